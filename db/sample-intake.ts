import type { Knex } from 'knex';
import type { AcceptanceCriteria, Priority, SampleRecordFacts, SampleState, TemperatureClass } from '../common/sample-intake';
import { isOpenCallState } from '../common/critical-calls';
import { workflowIds } from '../common/ids';
import { appendAudit } from './audit';
import type { Db } from './knex';
import { closeTask, openTask } from './tasks';

type Conn = Knex | Knex.Transaction;

export interface SampleTypeRow {
  code: string;
  name: string;
  containers: string[];
  preservatives: string[];
  min_volume_ml: string;
  temperature_classes: TemperatureClass[];
  reject_hemolyzed: boolean;
  reject_clotted: boolean;
  stability: Partial<Record<TemperatureClass, string>>;
}

export function criteriaOf(row: SampleTypeRow): AcceptanceCriteria {
  return {
    containers: row.containers,
    preservatives: row.preservatives,
    minVolumeMl: Number(row.min_volume_ml),
    temperatureClasses: row.temperature_classes,
    rejectHemolyzed: row.reject_hemolyzed,
    rejectClotted: row.reject_clotted,
    stability: row.stability,
  };
}

export async function sampleTypes(db: Conn): Promise<Map<string, SampleTypeRow>> {
  const rows: SampleTypeRow[] = await db('sample_types').where({ active: true });
  return new Map(rows.map((r) => [r.code, r]));
}

export async function testCodes(db: Conn): Promise<Map<string, { code: string; sample_type: string; work_queue: string }>> {
  const rows = await db('test_codes').select('code', 'sample_type', 'work_queue');
  return new Map(rows.map((r) => [r.code, r]));
}

export interface NewSample {
  sampleType: string;
  priority: Priority;
  requestedTests: string[];
  externalId?: string | null;
  barcode?: string | null;
  patient?: { name?: string; dob?: string; mrn?: string; sex?: 'female' | 'male' } | null;
  collectedAt?: string | null;
  arrival?: unknown;
  /** The requisition's ordering provider (a clinician's user ID): critical values are called to them. */
  orderingProviderId?: string | null;
}

export interface RegisteredSample {
  id: string;
  accession: string;
  sample_type: string;
  priority: Priority;
  requested_tests: string[];
  has_order: boolean;
  collected_at: Date | null;
  registered_at: Date;
  submitter_id: string | null;
  external_id: string | null;
  arrival: unknown;
  ordering_provider_id: string | null;
}

/**
 * Registers samples in one transaction: accession numbers from the Postgres sequence, one audit event each.
 * A barcode or external ID already known for the source raises the unique violation (23505) to the caller.
 */
export async function registerSamples(
  trx: Knex.Transaction,
  items: NewSample[],
  meta: {
    source: string;
    submitterId: string | null;
    actor: string;
    actorId: string | null;
    batchId?: string;
    workflowIdOf: (a: string) => string;
  },
): Promise<RegisteredSample[]> {
  const numbers: string[] = (
    await trx.raw(
      `select 'ACC-' || to_char(now() at time zone 'UTC', 'YY') || lpad(nextval('sample_accession_seq')::text, 6, '0') as n
         from generate_series(1, ?)`,
      [items.length],
    )
  ).rows.map((r: { n: string }) => r.n);
  const rows = items.map((item, i) => ({
    accession: numbers[i],
    source: meta.source,
    external_id: item.externalId ?? null,
    barcode: item.barcode ?? null,
    batch_id: meta.batchId ?? null,
    sample_type: item.sampleType,
    priority: item.priority,
    requested_tests: item.requestedTests,
    has_order: item.requestedTests.length > 0,
    patient_name: item.patient?.name ?? null,
    patient_dob: item.patient?.dob ?? null,
    patient_sex: item.patient?.sex ?? null,
    patient_mrn: item.patient?.mrn ?? null,
    submitter_id: meta.submitterId,
    ordering_provider_id: item.orderingProviderId ?? null,
    collected_at: item.collectedAt ?? null,
    workflow_id: meta.workflowIdOf(numbers[i]),
    stage: 'expected',
    arrival: item.arrival === undefined ? null : JSON.stringify(item.arrival),
  }));
  const inserted: RegisteredSample[] = [];
  for (let i = 0; i < rows.length; i += 500) {
    inserted.push(
      ...(await trx('samples')
        .insert(rows.slice(i, i + 500))
        .returning([
          'id',
          'accession',
          'sample_type',
          'priority',
          'requested_tests',
          'has_order',
          'collected_at',
          'registered_at',
          'submitter_id',
          'external_id',
          'arrival',
          'ordering_provider_id',
        ])),
    );
  }
  for (const row of inserted) {
    await appendAudit(trx, {
      actorId: meta.actorId,
      actor: meta.actor,
      action: 'sample.registered',
      entityType: 'sample',
      entityId: row.accession,
      details: {
        source: meta.source,
        sampleType: row.sample_type,
        priority: row.priority,
        tests: row.requested_tests,
        externalId: row.external_id,
        batchId: meta.batchId ?? null,
        orderingProviderId: row.ordering_provider_id,
      },
    });
  }
  return inserted;
}

/** The columns of a sample's row that a step's facts set; facts a step does not state leave their columns be. */
export function sampleRecordColumns(facts: SampleRecordFacts): Record<string, unknown> {
  const { receipt, collectedAt, inspection, order, deviation, cancelReason } = facts;
  return {
    ...(receipt && {
      received_at: receipt.receivedAt,
      received_by: receipt.by,
      received_location: receipt.location,
      collected_at: receipt.collectedAt,
    }),
    ...(collectedAt !== undefined && { collected_at: collectedAt }),
    ...(inspection && { inspection: JSON.stringify(inspection.record), volume_ml: inspection.volumeMl }),
    ...(order && { has_order: true, requested_tests: order.tests }),
    ...(deviation && { deviation_comment: deviation.comment }),
    ...(cancelReason !== undefined && { cancel_reason: cancelReason }),
  };
}

export interface SampleRow {
  id: string;
  accession: string;
  parent_id: string | null;
  source: string;
  external_id: string | null;
  barcode: string | null;
  batch_id: string | null;
  sample_type: string;
  priority: Priority;
  requested_tests: string[];
  rejected_tests: string[];
  has_order: boolean;
  patient_name: string | null;
  /** 'YYYY-MM-DD' (db/knex.ts). */
  patient_dob: string | null;
  patient_mrn: string | null;
  submitter_id: string | null;
  ordering_provider_id: string | null;
  collected_at: Date | null;
  state: SampleState;
  workflow_id: string | null;
  stage: string | null;
  due_at: Date | null;
  overdue: boolean;
  received_at: Date | null;
  received_by: string | null;
  received_location: string | null;
  inspection: unknown;
  deviation_comment: string | null;
  rejection_code: string | null;
  rejection_condition: string | null;
  disposition: string | null;
  cancel_reason: string | null;
  registered_at: Date;
  updated_at: Date;
}

export async function findSample(db: Conn, accession: string): Promise<SampleRow | undefined> {
  return db('samples').where({ accession }).first();
}

export async function findSampleByExternal(db: Conn, source: string, externalId: string): Promise<SampleRow | undefined> {
  return db('samples').where({ source, external_id: externalId }).first();
}

export interface SampleFilter {
  state?: string;
  sampleType?: string;
  overdue?: boolean;
  submitter?: string;
  batchId?: string;
  limit: number;
  offset: number;
}

/** Lists primary samples (not aliquots) from the projection; the runs are not asked. */
export async function listSamples(db: Db, f: SampleFilter) {
  const q = db('samples as s')
    .leftJoin('users as u', 'u.id', 's.submitter_id')
    .whereNull('s.parent_id')
    .select(
      's.accession',
      's.source',
      's.external_id',
      's.sample_type',
      's.priority',
      's.state',
      's.stage',
      's.requested_tests',
      's.rejected_tests',
      's.due_at',
      's.overdue',
      's.workflow_id',
      's.received_at',
      's.registered_at',
      'u.username as submitter',
    )
    .orderBy('s.registered_at', 'desc')
    .orderBy('s.accession', 'desc')
    .limit(f.limit)
    .offset(f.offset);
  if (f.state) q.where('s.state', f.state);
  if (f.sampleType) q.where('s.sample_type', f.sampleType);
  if (f.overdue !== undefined) q.where('s.overdue', f.overdue);
  if (f.submitter) q.where('u.username', f.submitter);
  if (f.batchId) q.where('s.batch_id', f.batchId);
  return q;
}

export interface CustodyEvent {
  sampleId: string;
  accession: string;
  event: string;
  actor: string;
  from?: string | null;
  to?: string | null;
  condition?: string | null;
  details?: Record<string, unknown>;
  idempotencyKey?: string;
}

export async function appendCustody(trx: Conn, e: CustodyEvent): Promise<void> {
  const insert = trx('sample_custody_events').insert({
    sample_id: e.sampleId,
    accession: e.accession,
    event: e.event,
    actor: e.actor,
    from_location: e.from ?? null,
    to_location: e.to ?? null,
    condition: e.condition ?? null,
    details: JSON.stringify(e.details ?? {}),
    idempotency_key: e.idempotencyKey ?? null,
  });
  await (e.idempotencyKey ? insert.onConflict('idempotency_key').ignore() : insert);
}

/** The custody trail of a sample and its aliquots, oldest first. */
export async function custodyTrail(db: Db, sampleId: string) {
  return db('sample_custody_events as c')
    .join('samples as s', 's.id', 'c.sample_id')
    .where('s.id', sampleId)
    .orWhere('s.parent_id', sampleId)
    .orderBy('c.id')
    .select(
      'c.id',
      'c.accession',
      'c.event',
      'c.actor',
      'c.from_location as from',
      'c.to_location as to',
      'c.condition',
      'c.details',
      'c.occurred_at',
    );
}

export async function sampleDetails(db: Db, sampleId: string) {
  const [aliquots, storage, routes] = await Promise.all([
    db('samples').where({ parent_id: sampleId }).orderBy('accession').select('accession', 'state', 'volume_ml'),
    db('sample_storage as st')
      .join('samples as s', 's.id', 'st.sample_id')
      .where((q) => q.where('s.id', sampleId).orWhere('s.parent_id', sampleId))
      .select('s.accession as piece', 'st.freezer', 'st.rack', 'st.box', 'st.position', 'st.stored_at'),
    db('sample_routes')
      .where({ sample_id: sampleId })
      .orderBy('test_code')
      .select('test_code as test', 'work_queue', 'piece_accession as piece', 'state', 'routed_at', 'resulted_at'),
  ]);
  return { aliquots, storage, routes };
}

export async function batchProgress(db: Db, batchId: string) {
  const batch = await db('sample_batches').where({ id: batchId }).first();
  if (!batch) return undefined;
  const counts: { state: string; n: number }[] = await db('samples')
    .where({ batch_id: batchId })
    .whereNull('parent_id')
    .groupBy('state')
    .select('state', db.raw('count(*)::int as n'));
  return { batch, byState: Object.fromEntries(counts.map((c) => [c.state, c.n])) as Record<string, number> };
}

export async function sourceOf(
  db: Conn,
  name: string,
): Promise<{ name: string; secret: string; contact_user_id: string | null } | undefined> {
  return db('sample_sources').where({ name }).first();
}

/** A registered user as a run's submitter, or null when the user is gone. */
export async function submitterOf(db: Conn, userId: string): Promise<{ kind: 'user'; userId: string; username: string } | null> {
  const user = await db('users').where({ id: userId }).first('id', 'username');
  return user ? { kind: 'user', userId: user.id, username: user.username } : null;
}

/** The sample a duplicate barcode or external ID from the API already registered. */
export async function apiDuplicateOf(db: Db, ids: { barcode?: string | null; externalId?: string | null }): Promise<string | undefined> {
  const row = await db('samples')
    .where({ source: 'api' })
    .andWhere((q) => {
      if (ids.barcode) q.orWhere('barcode', ids.barcode);
      if (ids.externalId) q.orWhere('external_id', ids.externalId);
    })
    .first('accession');
  return row?.accession;
}

/** A piece of a sample (the sample itself or one of its aliquots), by accession. */
export async function pieceOf(db: Conn, sampleId: string, accession: string): Promise<{ id: string; accession: string } | undefined> {
  return db('samples')
    .where({ accession })
    .andWhere((q) => q.where('id', sampleId).orWhere('parent_id', sampleId))
    .first('id', 'accession');
}

/** The accession stored at a freezer position, if any. */
export async function storageHolder(
  db: Conn,
  place: { freezer: string; rack: string; box: string; position: string },
): Promise<string | undefined> {
  const row = await db('sample_storage as st')
    .join('samples as s', 's.id', 'st.sample_id')
    .where({ freezer: place.freezer, rack: place.rack, box: place.box, position: place.position })
    .first('s.accession');
  return row?.accession;
}

/** A handoff a person records by hand: appended to the custody trail and audited, in one transaction. */
export async function recordHandoff(
  db: Db,
  sample: { accession: string },
  piece: { id: string; accession: string },
  handoff: { event: string; from?: string | null; to?: string | null; condition?: string | null },
  actor: { userId: string; username: string },
): Promise<void> {
  await db.transaction(async (trx) => {
    await appendCustody(trx, { sampleId: piece.id, accession: piece.accession, actor: actor.username, ...handoff });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'sample.custody',
      entityType: 'sample',
      entityId: sample.accession,
      details: { ...handoff, piece: piece.accession },
    });
  });
}

/** A webhook source with its HMAC secret, audited; a name taken raises the unique violation (23505). */
export async function registerSource(
  db: Db,
  source: { name: string; secret: string; contactUserId: string | null; contact: string | null },
  actor: { userId: string; username: string },
): Promise<void> {
  await db.transaction(async (trx) => {
    await trx('sample_sources').insert({ name: source.name, secret: source.secret, contact_user_id: source.contactUserId });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'sample.source_registered',
      entityType: 'sample_source',
      entityId: source.name,
      details: { contact: source.contact },
    });
  });
}

/** A batch and its samples in one transaction; a duplicate barcode or external ID raises the unique violation. */
export async function registerBatch(
  db: Db,
  batch: { id: string; workflowId: string; items: NewSample[] },
  actor: { userId: string; username: string },
): Promise<void> {
  await db.transaction(async (trx) => {
    await trx('sample_batches').insert({
      id: batch.id,
      created_by: actor.userId,
      source: 'api',
      size: batch.items.length,
      workflow_id: batch.workflowId,
    });
    await registerSamples(trx, batch.items, {
      source: 'api',
      submitterId: actor.userId,
      actor: actor.username,
      actorId: actor.userId,
      batchId: batch.id,
      workflowIdOf: workflowIds.sampleIntake,
    });
  });
}

/** An active user who might be named as an ordering provider. */
export interface ProviderCandidate {
  id: string;
  username: string;
  printed_name: string;
  roles: string[];
}

/** The active users with these usernames, in one query however many are named (a batch names up to 5000). */
export async function activeUsersNamed(db: Conn, usernames: string[]): Promise<Map<string, ProviderCandidate>> {
  const unique = [...new Set(usernames)];
  if (unique.length === 0) return new Map();
  const rows: ProviderCandidate[] = await db('users')
    .whereRaw('username = any(?::text[])', [unique])
    .andWhere({ active: true })
    .select('id', 'username', 'printed_name', 'roles');
  return new Map(rows.map((r) => [r.username, r]));
}

/** Why a named ordering provider cannot be one: not an active user, or not a clinician; null when they can. */
export function providerRefusal(user: ProviderCandidate | undefined): 'unknown' | 'not_clinician' | null {
  if (!user) return 'unknown';
  return user.roles.includes('clinician') ? null : 'not_clinician';
}

export const orderingProviderTaskKey = (accession: string) => `sample-ordering-provider:${accession}`;

/**
 * An external order named an ordering provider who is not an active clinician of the lab: the sample was registered
 * without one. Audited with the name and why, and a task asks the lab to set the provider (closed when one is set).
 */
export async function noteUnresolvedProvider(
  trx: Knex.Transaction,
  sample: { accession: string },
  named: { username: string; refusal: 'unknown' | 'not_clinician'; source: string },
  actor: { actor: string; actorId: string | null },
): Promise<void> {
  const why = named.refusal === 'unknown' ? 'is not an active user' : 'is not a clinician';
  await openTask(trx, {
    taskKey: orderingProviderTaskKey(sample.accession),
    workflowId: orderingProviderTaskKey(sample.accession),
    entityType: 'sample',
    entityId: sample.accession,
    kind: 'sample.ordering_provider',
    title: `The order of ${sample.accession} from ${named.source} names ordering provider "${named.username}", who ${why}: set the ordering provider`,
    assignee: { kind: 'role', role: 'lab_technician' },
  });
  await appendAudit(trx, {
    actorId: actor.actorId,
    actor: actor.actor,
    action: 'sample.ordering_provider_unresolved',
    entityType: 'sample',
    entityId: sample.accession,
    details: { named: named.username, reason: named.refusal, source: named.source },
  });
}

type ProviderRef = { id: string; username: string } | null;

/** Why setting a sample's ordering provider was refused (nothing written). */
export class OrderingProviderRefused extends Error {
  constructor(readonly confirmedCall: string) {
    super(`a critical call of the sample is confirmed: ${confirmedCall}`);
  }
}

/**
 * Sets a sample's ordering provider, in one transaction: the sample row (locked, so that a critical call opening at
 * the same moment reads either the old provider or the new one and is then updated), every open critical call of the
 * sample (not a confirmed one), the audit of the sample (old and new value, reason) and of each call changed, and the
 * task an unresolved provider opened is closed. Refused (OrderingProviderRefused) once a call of the sample has been
 * confirmed. Answers the provider before, and the calls changed; nothing is written when the provider is unchanged.
 */
export async function setOrderingProvider(
  db: Db,
  sample: { id: string; accession: string },
  provider: { id: string; username: string },
  reason: string,
  actor: { userId: string; username: string },
): Promise<{ previous: ProviderRef; changed: boolean; criticalCalls: string[] }> {
  return db.transaction((trx) => setOrderingProviderIn(trx, sample, provider, reason, actor));
}

/**
 * setOrderingProvider inside the caller's transaction. With `onlyWhenNone`, a sample that already has an ordering
 * provider keeps them: nothing is written or refused, and the answer says so (`kept: true`).
 */
export async function setOrderingProviderIn(
  trx: Knex.Transaction,
  sample: { id: string; accession: string },
  provider: { id: string; username: string },
  reason: string,
  actor: { userId: string; username: string },
  opts: { onlyWhenNone?: boolean } = {},
): Promise<{ previous: ProviderRef; changed: boolean; criticalCalls: string[]; kept?: boolean }> {
  const row = await trx('samples').where({ id: sample.id }).forNoKeyUpdate().first('ordering_provider_id');
  const previous: ProviderRef = row.ordering_provider_id
    ? ((await trx('users').where({ id: row.ordering_provider_id }).first('id', 'username')) ?? null)
    : null;
  if (opts.onlyWhenNone && row.ordering_provider_id) {
    return { previous, changed: false, criticalCalls: [], kept: row.ordering_provider_id !== provider.id };
  }
  // Every call of the sample locked and read once: an attempt confirming one at this moment is seen here or waits.
  const all: { workflow_id: string; state: string; ordering_provider_id: string | null }[] = await trx('critical_calls')
    .where({ sample_id: sample.id })
    .orderBy('opened_at')
    .forNoKeyUpdate()
    .select('workflow_id', 'state', 'ordering_provider_id');
  const confirmed = all.find((c) => c.state === 'notified');
  if (confirmed) throw new OrderingProviderRefused(confirmed.workflow_id);
  if (previous?.id === provider.id) return { previous, changed: false, criticalCalls: [] };
  await trx('samples').where({ id: sample.id }).update({ ordering_provider_id: provider.id, updated_at: trx.fn.now() });
  const calls = all.filter((c) => isOpenCallState(c.state));
  if (calls.length) {
    await trx('critical_calls')
      .whereIn(
        'workflow_id',
        calls.map((c) => c.workflow_id),
      )
      .update({ ordering_provider_id: provider.id });
  }
  const to = { id: provider.id, username: provider.username };
  const from = previous ? { id: previous.id, username: previous.username } : null;
  await appendAudit(trx, {
    actorId: actor.userId,
    actor: actor.username,
    action: 'sample.ordering_provider_set',
    entityType: 'sample',
    entityId: sample.accession,
    details: { from, to, reason, criticalCalls: calls.map((c) => c.workflow_id) },
  });
  for (const call of calls) {
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'critical_call.ordering_provider_set',
      entityType: 'critical_call',
      entityId: call.workflow_id,
      details: { accession: sample.accession, from: call.ordering_provider_id, to: provider.id, reason },
    });
  }
  await closeTask(trx, orderingProviderTaskKey(sample.accession), 'done', actor.userId);
  return { previous, changed: true, criticalCalls: calls.map((c) => c.workflow_id) };
}
