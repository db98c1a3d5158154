import type { Knex } from 'knex';
import { workflowIds } from '../common/ids';
import { appendAudit } from './audit';
import type { Db } from './knex';
import {
  findSampleByExternal,
  noteUnresolvedProvider,
  registerSamples,
  setOrderingProviderIn,
  type NewSample,
  type SampleRow,
} from './sample-intake';
import { closeTask, openTask } from './tasks';

/** External orders the webhook could not register (unknown sample type or test codes), held for a person. */

export interface HeldOrderRow {
  id: string;
  source: string;
  event_id: string;
  reason: string;
  payload: unknown;
  state: 'held' | 'resolved' | 'discarded';
  created_at: Date;
}

/** The order as the webhook delivered it: what a release needs of it. */
export interface HeldOrderPayload {
  eventId: string;
  sample: { externalId: string; sampleType?: string; tests?: string[] };
}

const taskKeyOf = (heldOrderId: string) => `sample-held-order:${heldOrderId}`;
const entityIdOf = (source: string, externalId: string) => `${source}:${externalId}`;

/** Holds an order for a person, with a task for the lab and an audit event; a redelivered order is held once. */
export async function holdOrder(db: Db, source: string, payload: HeldOrderPayload, reason: string): Promise<void> {
  await db.transaction(async (trx) => {
    const [row] = await trx('sample_held_orders')
      .insert({ source, event_id: payload.eventId, reason, payload: JSON.stringify(payload) })
      .onConflict(['source', 'event_id'])
      .ignore()
      .returning('id');
    if (!row) return;
    await openTask(trx, {
      taskKey: taskKeyOf(row.id),
      workflowId: taskKeyOf(row.id),
      entityType: 'sample_order',
      entityId: entityIdOf(source, payload.sample.externalId),
      kind: 'sample.held_order',
      title: `Order ${payload.sample.externalId} from ${source} is held: ${reason}`,
      assignee: { kind: 'role', role: 'lab_technician' },
    });
    await appendAudit(trx, {
      actor: `system:${source}`,
      action: 'sample.order_held',
      entityType: 'sample_order',
      entityId: entityIdOf(source, payload.sample.externalId),
      details: { eventId: payload.eventId, reason },
    });
  });
}

export async function findHeldOrder(db: Db, id: string): Promise<HeldOrderRow | undefined> {
  return db('sample_held_orders').where({ id }).first();
}

export async function listHeldOrders(db: Db, state: HeldOrderRow['state']) {
  return db('sample_held_orders')
    .where({ state })
    .orderBy('created_at')
    .select('id', 'source', 'event_id', 'reason', 'payload', 'state', 'created_at');
}

/** Claims a held order; false when a concurrent resolution claimed it first. */
async function claim(trx: Knex.Transaction, id: string, fields: Record<string, unknown>): Promise<boolean> {
  const n = await trx('sample_held_orders')
    .where({ id, state: 'held' })
    .update({ ...fields, resolved_at: trx.fn.now() });
  return n > 0;
}

type Person = { userId: string; username: string };

/** Dismisses a held order with a reason; false when it was resolved meanwhile (nothing written). */
export async function dismissHeldOrder(db: Db, held: HeldOrderRow, reason: string, actor: Person): Promise<boolean> {
  const payload = held.payload as HeldOrderPayload;
  return db.transaction(async (trx) => {
    if (!(await claim(trx, held.id, { state: 'discarded' }))) return false;
    await closeTask(trx, taskKeyOf(held.id), 'cancelled', actor.userId);
    await appendAudit(trx, {
      actor: actor.username,
      actorId: actor.userId,
      action: 'sample.order_dismissed',
      entityType: 'sample_order',
      entityId: entityIdOf(held.source, payload.sample.externalId),
      details: { heldOrderId: held.id, eventId: payload.eventId, reason },
    });
    return true;
  });
}

/**
 * Releases a held order under the codes a person mapped it to: registers its sample (unless a later delivery
 * already did), marks the order and its webhook event applied, closes the task and audits the mapping, in one
 * transaction. Returns the sample, or null when the order was resolved meanwhile (nothing written).
 */
export async function releaseHeldOrder(
  db: Db,
  held: HeldOrderRow,
  release: {
    /** The order as mapped to known codes; it replaces the held payload. */
    mapped: HeldOrderPayload;
    sample: NewSample;
    submitterId: string | null;
    mapping: { tests: Record<string, string>; comment: string | null };
    /** The provider the order named who is not an active clinician (the sample is registered without one). */
    unresolvedProvider?: { username: string; refusal: 'unknown' | 'not_clinician' };
    /**
     * The provider the person resolving gave (an active clinician). When a later delivery already registered the
     * sample, it is applied to that sample if it has none yet (as `PUT …/ordering-provider` would, refused once a
     * critical call of the sample is confirmed); a sample with another provider keeps them.
     */
    givenProvider?: { id: string; username: string } | null;
  },
  actor: Person,
): Promise<(SampleRow & { orderingProviderOutcome: HeldOrderProviderOutcome }) | null> {
  const payload = held.payload as HeldOrderPayload;
  const externalId = release.mapped.sample.externalId;
  return db
    .transaction(async (trx) => {
      const locked = await trx('sample_held_orders').where({ id: held.id }).forNoKeyUpdate().first('state');
      // Resolved meanwhile: nothing of this resolution applies (not even its provider).
      if (locked?.state !== 'held') throw new HeldOrderResolvedMeanwhile(held.id);
      let sample = await findSampleByExternal(trx, held.source, externalId);
      let outcome: HeldOrderProviderOutcome = 'registered';
      if (sample && release.givenProvider) {
        const set = await setOrderingProviderIn(
          trx,
          sample,
          release.givenProvider,
          `held order ${held.id} released naming the ordering provider`,
          actor,
          { onlyWhenNone: true },
        );
        outcome = set.kept ? 'kept_existing' : set.changed ? 'set' : 'unchanged';
        if (set.changed) sample = { ...sample, ordering_provider_id: release.givenProvider.id };
      } else if (sample) {
        outcome = 'not_given';
      }
      if (!sample) {
        const [registered] = await registerSamples(trx, [release.sample], {
          source: held.source,
          submitterId: release.submitterId,
          actor: actor.username,
          actorId: actor.userId,
          workflowIdOf: workflowIds.sampleIntake,
        });
        if (release.unresolvedProvider) {
          await noteUnresolvedProvider(
            trx,
            registered,
            { ...release.unresolvedProvider, source: held.source },
            { actor: actor.username, actorId: actor.userId },
          );
        }
        sample = await findSampleByExternal(trx, held.source, externalId);
      }
      if (!sample) throw new Error(`the sample of held order ${held.id} was not registered`);
      // Still held: it was checked under its lock above.
      await claim(trx, held.id, {
        state: 'resolved',
        accession: sample.accession,
        payload: JSON.stringify(release.mapped),
      });
      await closeTask(trx, taskKeyOf(held.id), 'done', actor.userId);
      await trx('sample_webhook_events')
        .where({ source: held.source, event_id: payload.eventId })
        .update({ applied_at: trx.fn.now(), accession: sample.accession });
      await appendAudit(trx, {
        actor: actor.username,
        actorId: actor.userId,
        action: 'sample.order_released',
        entityType: 'sample_order',
        entityId: entityIdOf(held.source, payload.sample.externalId),
        details: {
          heldOrderId: held.id,
          eventId: payload.eventId,
          accession: sample.accession,
          sampleType: { from: payload.sample.sampleType ?? null, to: release.sample.sampleType },
          tests: release.mapping.tests,
          comment: release.mapping.comment,
          orderingProviderId: release.sample.orderingProviderId ?? null,
          // What became of it: registered with the sample, set on the sample a later delivery registered, or not
          // applied because that sample already has another provider (named here as the sample's).
          orderingProvider: { outcome, sampleProviderId: sample.ordering_provider_id },
        },
      });
      return { ...sample, orderingProviderOutcome: outcome };
    })
    .catch((err: unknown) => {
      if (err instanceof HeldOrderResolvedMeanwhile) return null;
      throw err;
    });
}

/**
 * What a released held order did with the ordering provider: `registered` with the sample it registered; on a sample
 * a later delivery registered: `set` (it had none), `unchanged` (already that provider), `kept_existing` (it has
 * another, left as it is), `not_given` (the resolution named none).
 */
export type HeldOrderProviderOutcome = 'registered' | 'set' | 'unchanged' | 'kept_existing' | 'not_given';

class HeldOrderResolvedMeanwhile extends Error {
  constructor(id: string) {
    super(`held order ${id} was resolved meanwhile`);
  }
}
