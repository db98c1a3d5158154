import { randomBytes, randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { UpdateDefinition } from '@temporalio/client';
import { z } from 'zod';
import type { AssigneeRef } from '../../common/assignees';
import type { Actor } from '../../common/roles';
import type { Knex } from 'knex';
import {
  DEFAULT_INTAKE_TIMERS,
  FINAL_SAMPLE_STATES,
  acceptUpdate,
  acceptWithDeviationUpdate,
  aliquotUpdate,
  attachOrderUpdate,
  batchProgressQuery,
  cancelUpdate,
  inspectUpdate,
  receiveUpdate,
  reinstateUpdate,
  rejectUpdate,
  routeUpdate,
  sampleBatchWorkflowId,
  sampleStateQuery,
  storeUpdate,
  type SampleIntakeState,
} from '../../common/sample-intake';
import { workflowIds } from '../../common/ids';
import { appendAudit } from '../../db/audit';
import { materialOf } from '../../db/erp-sync';
import type { Db } from '../../db/knex';
import {
  appendCustody,
  batchProgress,
  custodyTrail,
  findSample,
  findSampleByExternal,
  listSamples,
  registerSamples,
  sampleDetails,
  sampleTypes,
  sourceOf,
  testCodes,
  type NewSample,
  type SampleRow,
} from '../../db/sample-intake';
import { listSignaturesFor } from '../../db/signatures';
import type { sampleBatchWorkflow } from '../../workflows';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import { compareIdentifiers, deliverSampleEvent, inspectionHash, intakeInput, startIntakeRun, webhookEvent } from '../sample-intake-runs';
import { closeTask } from '../../db/tasks';
import {
  accessionParams,
  aliquotBody,
  batchBody,
  custodyBody,
  deviationBody,
  heldOrderParams,
  inspectBody,
  listQuery,
  orderBody,
  reasonBody,
  receiveBody,
  registerBody,
  rejectBody,
  resolveHeldOrderBody,
  routeBody,
  sourceBody,
  storeBody,
  type WebhookBody,
} from '../schemas/sample-intake';
import { verifySigner } from '../signing';

const LAB = ['lab_technician', 'lab_director'] as const;
const SUBMITTERS = ['lab_technician', 'lab_director', 'clinician'] as const;
const TAG = 'sample intake';
const located = (accession: string) => `/api/v1/samples/${accession}`;

/** Checks sample types and test codes against the catalogue; the first unknown one is a 422 naming its field. */
export async function checkCodes(db: Db, items: { sampleType: string; tests: string[] }[], prefix: (i: number) => string) {
  const [types, tests] = await Promise.all([sampleTypes(db), testCodes(db)]);
  items.forEach((item, i) => {
    const type = types.get(item.sampleType);
    if (!type) {
      throw problems.unprocessable('unknown-sample-type', `unknown sample type "${item.sampleType}"`, {
        errors: [{ field: `${prefix(i)}sampleType`, detail: 'unknown sample type' }],
      });
    }
    item.tests.forEach((code, j) => {
      const test = tests.get(code);
      if (!test || test.sample_type !== item.sampleType) {
        const detail = test ? `test ${code} runs on ${test.sample_type}, not ${item.sampleType}` : `unknown test code "${code}"`;
        throw problems.unprocessable('unknown-test-code', detail, { errors: [{ field: `${prefix(i)}tests.${j}`, detail }] });
      }
    });
  });
  return types;
}

const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

export function sampleIntakeRoutes(deps: ApiDeps): RouteSpec[] {
  const { db, temporal, config } = deps;

  async function load(accession: string): Promise<SampleRow> {
    const row = await findSample(db, accession);
    if (!row || row.parent_id) throw problems.notFound(`sample ${accession}`);
    return row;
  }

  async function view(row: SampleRow, live?: SampleIntakeState) {
    let process: SampleIntakeState | null = live ?? null;
    if (!process && row.workflow_id && !FINAL_SAMPLE_STATES.includes(row.state)) {
      try {
        process = await temporal.workflow.getHandle(row.workflow_id).query(sampleStateQuery);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }
    const [details, signatures] = await Promise.all([sampleDetails(db, row.id), listSignaturesFor(db, 'sample', row.accession)]);
    return {
      accession: row.accession,
      workflowId: row.workflow_id,
      source: row.source,
      externalId: row.external_id,
      barcode: row.barcode,
      sampleType: row.sample_type,
      priority: row.priority,
      state: process?.state ?? row.state,
      stage: process?.stage ?? row.stage,
      requestedTests: process?.requestedTests ?? row.requested_tests,
      rejectedTests: process?.rejectedTests ?? row.rejected_tests,
      collectedAt: process?.collectedAt ?? row.collected_at,
      receivedAt: process?.receivedAt ?? row.received_at,
      receivedBy: process?.receivedBy ?? row.received_by,
      receivedLocation: process?.receivedLocation ?? row.received_location,
      dueAt: process ? process.dueAt : row.due_at,
      overdue: row.overdue,
      inspection: process?.inspection ?? row.inspection,
      decision: process?.decision ?? null,
      deviationComment: row.deviation_comment,
      rejection: row.rejection_code ? { code: row.rejection_code, condition: row.rejection_condition, disposition: row.disposition } : null,
      cancelReason: process?.cancelReason ?? row.cancel_reason,
      live: process !== null,
      process,
      ...details,
      signatures,
    };
  }

  /** Sends a person's action to the sample's run and answers its new state once the run accepted it. */
  function action<B>(
    name: string,
    summary: string,
    roles: readonly (typeof SUBMITTERS)[number][],
    body: z.ZodType<B> | undefined,
    args: (row: SampleRow, body: B, actor: Actor) => Promise<{ update: UpdateDefinition<SampleIntakeState, [never]>; arg: unknown }>,
  ) {
    return route<z.infer<typeof accessionParams>, Record<string, never>, B>({
      method: 'post',
      path: `/samples/:accession/${name}`,
      summary,
      tag: TAG,
      roles,
      params: accessionParams,
      body,
      handler: async ({ params, body: b, actor, ctx }) => {
        const row = await load(params.accession);
        if (FINAL_SAMPLE_STATES.includes(row.state))
          throw problems.conflict('run-finished', `${row.accession} is ${row.state}; nothing more can be done`);
        const { update, arg } = await args(row, b, actor);
        const state = await temporal.workflow.getHandle(row.workflow_id!).executeUpdate(update, { args: [arg as never] });
        ctx.body = await view((await findSample(db, row.accession))!, state);
      },
    });
  }
  const upd = <T>(u: UpdateDefinition<SampleIntakeState, [T]>) => u as unknown as UpdateDefinition<SampleIntakeState, [never]>;

  return [
    route({
      method: 'post',
      path: '/samples',
      summary: 'Register a sample (accession number assigned) and start its intake run → 202 with the run',
      tag: TAG,
      roles: SUBMITTERS,
      body: registerBody,
      handler: async ({ body, actor, ctx }) => {
        const types = await checkCodes(db, [body], () => 'body.');
        if (body.collectedAt && Date.parse(body.collectedAt) > Date.now()) {
          throw problems.unprocessable('collection-in-future', 'the collection time is in the future', {
            errors: [{ field: 'body.collectedAt', detail: 'in the future' }],
          });
        }
        let submitter: AssigneeRef = { kind: 'user', userId: actor.userId, username: actor.username };
        if (body.submitter) {
          const user = await db('users').where({ username: body.submitter, active: true }).first('id', 'username');
          if (!user)
            throw problems.unprocessable('unknown-user', `no active user "${body.submitter}"`, {
              errors: [{ field: 'body.submitter', detail: 'unknown user' }],
            });
          submitter = { kind: 'user', userId: user.id, username: user.username };
        }
        const item: NewSample = { ...body, requestedTests: body.tests };
        try {
          const { row, workflowId } = await db.transaction(async (trx) => {
            const [registered] = await registerSamples(trx, [item], {
              source: 'api',
              submitterId: submitter.kind === 'user' ? submitter.userId : null,
              actor: actor.username,
              actorId: actor.userId,
              workflowIdOf: workflowIds.sampleIntake,
            });
            // Started inside the transaction: if Temporal refuses, no sample is left without its run.
            const handle = await startIntakeRun(
              temporal,
              config.taskQueue,
              intakeInput(registered, types.get(registered.sample_type)!, submitter, body.timers),
            );
            return { row: registered, workflowId: handle.workflowId };
          });
          ctx.status = 202;
          ctx.set('Location', located(row.accession));
          ctx.body = { accession: row.accession, workflowId, state: 'expected', location: located(row.accession) };
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
          const existing = await db('samples')
            .where({ source: 'api' })
            .andWhere((q) => {
              if (body.barcode) q.orWhere('barcode', body.barcode);
              if (body.externalId) q.orWhere('external_id', body.externalId);
            })
            .first('accession');
          throw problems.conflict('duplicate-sample', `this tube is already registered as ${existing?.accession}`, {
            accession: existing?.accession,
          });
        }
      },
    }),
    route({
      method: 'get',
      path: '/samples',
      summary: 'List samples (state, sampleType, overdue, submitter filters) from the projection',
      tag: TAG,
      roles: 'any',
      query: listQuery,
      handler: async ({ query, ctx }) => {
        ctx.body = { limit: query.limit, offset: query.offset, items: await listSamples(db, query) };
      },
    }),
    route({
      method: 'get',
      path: '/samples/:accession',
      summary: 'A sample: live state from its run while it runs, aliquots, storage, routes, signatures',
      tag: TAG,
      roles: 'any',
      params: accessionParams,
      handler: async ({ params, ctx }) => {
        ctx.body = await view(await load(params.accession));
      },
    }),
    route({
      method: 'get',
      path: '/samples/:accession/custody',
      summary: 'The chain of custody of a sample and its aliquots, oldest first',
      tag: TAG,
      roles: 'any',
      params: accessionParams,
      handler: async ({ params, ctx }) => {
        const row = await load(params.accession);
        ctx.body = { accession: row.accession, items: await custodyTrail(db, row.id) };
      },
    }),
    route({
      method: 'post',
      path: '/samples/:accession/custody',
      summary: 'Record a handoff (who, when, from where to where, condition); appended, never changed',
      tag: TAG,
      roles: LAB,
      params: accessionParams,
      body: custodyBody,
      handler: async ({ params, body, actor, ctx }) => {
        const row = await load(params.accession);
        const piece = body.piece
          ? await db('samples')
              .where({ accession: body.piece })
              .andWhere((q) => q.where('id', row.id).orWhere('parent_id', row.id))
              .first('id', 'accession')
          : row;
        if (!piece) throw problems.unprocessable('unknown-piece', `${body.piece} is not part of ${row.accession}`);
        await db.transaction(async (trx) => {
          await appendCustody(trx, {
            sampleId: piece.id,
            accession: piece.accession,
            event: body.event,
            actor: actor.username,
            from: body.from,
            to: body.to,
            condition: body.condition,
          });
          await appendAudit(trx, {
            actorId: actor.userId,
            actor: actor.username,
            action: 'sample.custody',
            entityType: 'sample',
            entityId: row.accession,
            details: { ...body, piece: piece.accession },
          });
        });
        ctx.status = 201;
        ctx.body = { accession: row.accession, items: await custodyTrail(db, row.id) };
      },
    }),
    action('receive', 'Receive the specimen: who (you), when (server UTC), where, temperature', LAB, receiveBody, async (row, b, actor) => {
      const receivedAt = new Date().toISOString();
      const collectedAt = b.collectedAt ?? (row.collected_at ? row.collected_at.toISOString() : undefined);
      if (collectedAt && Date.parse(collectedAt) > Date.parse(receivedAt)) {
        throw problems.unprocessable('collection-after-receipt', `the collection time ${collectedAt} is after the receipt ${receivedAt}`, {
          errors: [{ field: 'body.collectedAt', detail: 'after receipt' }],
        });
      }
      return {
        update: upd(receiveUpdate),
        arg: {
          actor,
          by: actor.username,
          receivedAt,
          location: b.location,
          temperatureC: b.temperatureC,
          collectedAt: b.collectedAt,
          condition: b.condition,
        },
      };
    }),
    action(
      'inspect',
      'Record the inspection against the sample type’s written acceptance criteria',
      LAB,
      inspectBody,
      async (row, b, actor) => {
        const live = await temporal.workflow.getHandle(row.workflow_id!).query(sampleStateQuery);
        const material = row.source === 'erp' ? await materialOf(db, row.id) : null;
        const findings = { ...b, identifiers: compareIdentifiers(row, b.identifiers, material) };
        return {
          update: upd(inspectUpdate),
          arg: { actor, findings, contentHash: inspectionHash(row.accession, findings, live.receivedAt) },
        };
      },
    ),
    action('accept', 'Accept a specimen that meets every criterion', LAB, undefined, async (_row, _b, actor) => ({
      update: upd(acceptUpdate),
      arg: { actor },
    })),
    action(
      'accept-with-deviation',
      'Accept despite failed criteria: lab director’s signature over the inspection hash and a comment for the report',
      ['lab_director'],
      deviationBody,
      async (row, b, actor) => {
        const signature = await verifySigner(deps, actor, b.signature, { entityType: 'sample', entityId: row.accession });
        return { update: upd(acceptWithDeviationUpdate), arg: { actor, comment: b.comment, signature } };
      },
    ),
    action(
      'reject',
      'Reject (HL7 0490 code, condition, disposition), for all or some requested tests',
      LAB,
      rejectBody,
      async (_row, b, actor) => ({ update: upd(rejectUpdate), arg: { actor, ...b } }),
    ),
    action('aliquot', 'Split into aliquots (children get <accession>-A<n>)', LAB, aliquotBody, async (_row, b, actor) => ({
      update: upd(aliquotUpdate),
      arg: { actor, ...b },
    })),
    action(
      'store',
      'Store the sample or an aliquot at freezer/rack/box/position (one sample per position)',
      LAB,
      storeBody,
      async (row, b, actor) => {
        const holder = await db('sample_storage as st')
          .join('samples as s', 's.id', 'st.sample_id')
          .where({ freezer: b.freezer, rack: b.rack, box: b.box, position: b.position })
          .first('s.accession');
        const piece = b.piece ?? row.accession;
        if (holder && holder.accession !== piece)
          throw problems.conflict(
            'position-taken',
            `position ${b.freezer}/${b.rack}/${b.box}/${b.position} already holds ${holder.accession}`,
          );
        return { update: upd(storeUpdate), arg: { actor, ...b, piece } };
      },
    ),
    action(
      'route',
      'Route tests to their work queues (all accepted, unrouted tests when none are named)',
      LAB,
      routeBody,
      async (row, b, actor) => ({
        update: upd(routeUpdate),
        arg: { actor, tests: b.tests?.map((t) => ({ test: t.test, piece: t.piece ?? row.accession })) },
      }),
    ),
    action('order', 'Attach an order to a specimen that arrived without one', SUBMITTERS, orderBody, async (row, b, actor) => {
      await checkCodes(db, [{ sampleType: row.sample_type, tests: b.tests }], () => 'body.');
      return { update: upd(attachOrderUpdate), arg: { actor, tests: b.tests } };
    }),
    action('cancel', 'Cancel (reason); it can be reinstated', SUBMITTERS, reasonBody, async (_row, b, actor) => ({
      update: upd(cancelUpdate),
      arg: { actor, reason: b.reason },
    })),
    action('reinstate', 'Reinstate a cancelled sample where it was', LAB, reasonBody, async (_row, b, actor) => ({
      update: upd(reinstateUpdate),
      arg: { actor, reason: b.reason },
    })),

    route({
      method: 'post',
      path: '/sample-batches',
      summary: 'Register up to 5000 samples at once; one run per sample is started by a batch run → 202',
      tag: TAG,
      roles: LAB,
      body: batchBody,
      handler: async ({ body, actor, ctx }) => {
        await checkCodes(
          db,
          body.samples.map((s) => ({ sampleType: s.sampleType, tests: s.tests })),
          (i) => `body.samples.${i}.`,
        );
        const now = Date.now();
        const items: NewSample[] = body.samples.map((s, i) => {
          if (s.collectedAt && Date.parse(s.collectedAt) > now) {
            throw problems.unprocessable('collection-in-future', `sample ${i}: the collection time is in the future`, {
              errors: [{ field: `body.samples.${i}.collectedAt`, detail: 'in the future' }],
            });
          }
          return { ...s, requestedTests: s.tests };
        });
        const receivedAt = new Date(now).toISOString();
        const batchId = randomUUID();
        const workflowId = sampleBatchWorkflowId(batchId);
        try {
          await db.transaction(async (trx) => {
            await trx('sample_batches').insert({
              id: batchId,
              created_by: actor.userId,
              source: 'api',
              size: items.length,
              workflow_id: workflowId,
            });
            const withArrival = items.map((item, i) => {
              const a = body.samples[i].arrival;
              if (!a) return item;
              const findings = {
                ...a.findings,
                temperatureC: a.temperatureC,
                identifiers: compareIdentifiers(
                  {
                    patient_name: item.patient?.name ?? null,
                    patient_dob: item.patient?.dob ? new Date(item.patient.dob) : null,
                    patient_mrn: item.patient?.mrn ?? null,
                  },
                  a.findings.identifiers,
                ),
              };
              return {
                ...item,
                arrival: {
                  autoAccept: body.autoAccept,
                  receipt: { actor: null, by: actor.username, receivedAt, location: a.location, temperatureC: a.temperatureC },
                  inspection: { actor: null, findings, contentHash: '' },
                },
              };
            });
            await registerSamples(trx, withArrival, {
              source: 'api',
              submitterId: actor.userId,
              actor: actor.username,
              actorId: actor.userId,
              batchId,
              workflowIdOf: workflowIds.sampleIntake,
            });
          });
        } catch (err) {
          if (isUniqueViolation(err))
            throw problems.conflict('duplicate-sample', 'a barcode or external ID in the batch is already registered');
          throw err;
        }
        // After the commit: the batch run reads its samples from Postgres.
        await temporal.workflow.start<typeof sampleBatchWorkflow>('sampleBatchWorkflow', {
          workflowId,
          taskQueue: config.taskQueue,
          args: [{ batchId, concurrency: 50, pageSize: 500, timers: { ...DEFAULT_INTAKE_TIMERS, ...body.timers } }],
          workflowIdConflictPolicy: 'FAIL',
        });
        ctx.status = 202;
        ctx.set('Location', `/api/v1/sample-batches/${batchId}`);
        ctx.body = { batchId, workflowId, size: items.length };
      },
    }),
    route({
      method: 'get',
      path: '/sample-batches/:batchId',
      summary: 'Batch progress: runs started, samples by state',
      tag: TAG,
      roles: 'any',
      params: z.object({ batchId: z.uuid() }),
      handler: async ({ params, ctx }) => {
        const progress = await batchProgress(db, params.batchId);
        if (!progress) throw problems.notFound(`batch ${params.batchId}`);
        let started: number | null = null;
        let done = false;
        try {
          const q = await temporal.workflow.getHandle(progress.batch.workflow_id).query(batchProgressQuery);
          started = q.started;
          done = q.done;
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
        const size = progress.batch.size as number;
        const accepted = ['accepted', 'accepted_with_deviation', 'aliquoted', 'stored', 'routed', 'completed'].reduce(
          (n, st) => n + (progress.byState[st] ?? 0),
          0,
        );
        ctx.body = {
          batchId: params.batchId,
          size,
          started: done ? size : started,
          runsStarted: done,
          byState: progress.byState,
          accepted,
          createdAt: progress.batch.created_at,
        };
      },
    }),
    route({
      method: 'post',
      path: '/sample-sources',
      summary: 'Register a webhook source; its HMAC secret is shown once',
      tag: TAG,
      roles: ['admin'],
      body: sourceBody,
      handler: async ({ body, actor, ctx }) => {
        const contact = body.contact ? await db('users').where({ username: body.contact }).first('id') : null;
        if (body.contact && !contact) throw problems.unprocessable('unknown-user', `no user "${body.contact}"`);
        const secret = `whsec_${randomBytes(24).toString('base64url')}`;
        try {
          await db.transaction(async (trx) => {
            await trx('sample_sources').insert({ name: body.name, secret, contact_user_id: contact?.id ?? null });
            await appendAudit(trx, {
              actorId: actor.userId,
              actor: actor.username,
              action: 'sample.source_registered',
              entityType: 'sample_source',
              entityId: body.name,
              details: { contact: body.contact ?? null },
            });
          });
        } catch (err) {
          if (isUniqueViolation(err)) throw problems.conflict('source-exists', `source ${body.name} already exists`);
          throw err;
        }
        ctx.status = 201;
        ctx.body = { name: body.name, secret };
      },
    }),
    route({
      method: 'get',
      path: '/sample-held-orders',
      summary: 'External orders held for a person (unknown sample type or test codes)',
      tag: TAG,
      roles: LAB,
      query: z.object({ state: z.enum(['held', 'resolved', 'discarded']).default('held') }),
      handler: async ({ query, ctx }) => {
        ctx.body = {
          items: await db('sample_held_orders')
            .where({ state: query.state })
            .orderBy('created_at')
            .select('id', 'source', 'event_id', 'reason', 'payload', 'state', 'created_at'),
        };
      },
    }),
    route({
      method: 'post',
      path: '/sample-held-orders/:id/resolve',
      summary:
        'Resolve a held order: map its unknown codes to known ones and release it (registered and applied as the webhook would have), or dismiss it with a reason',
      tag: TAG,
      roles: LAB,
      params: heldOrderParams,
      body: resolveHeldOrderBody,
      handler: async ({ params, body, actor, ctx }) => {
        const held = await db('sample_held_orders').where({ id: params.id }).first();
        if (!held) throw problems.notFound(`held order ${params.id}`);
        if (held.state !== 'held') throw problems.conflict('held-order-resolved', `held order ${params.id} is already ${held.state}`);
        const taskKey = `sample-held-order:${held.id}`;
        const payload = held.payload as WebhookBody;
        const entityId = `${held.source}:${payload.sample.externalId}`;
        /** Claims the held row in a transaction; a concurrent resolution finds it no longer held (409). */
        const claim = async (trx: Knex.Transaction, fields: Record<string, unknown>) => {
          const n = await trx('sample_held_orders')
            .where({ id: held.id, state: 'held' })
            .update({ ...fields, resolved_at: trx.fn.now() });
          if (!n) throw problems.conflict('held-order-resolved', `held order ${params.id} was resolved meanwhile`);
        };

        if (body.action === 'dismiss') {
          await db.transaction(async (trx) => {
            await claim(trx, { state: 'discarded' });
            await closeTask(trx, taskKey, 'cancelled', actor.userId);
            await appendAudit(trx, {
              actor: actor.username,
              actorId: actor.userId,
              action: 'sample.order_dismissed',
              entityType: 'sample_order',
              entityId,
              details: { heldOrderId: held.id, eventId: payload.eventId, reason: body.reason },
            });
          });
          ctx.body = { id: held.id, state: 'discarded', accession: null };
          return;
        }

        const sampleType = body.sampleType ?? payload.sample.sampleType;
        if (!sampleType) {
          throw problems.unprocessable('sample-type-required', 'the held order names no sample type: give one', {
            errors: [{ field: 'body.sampleType', detail: 'required' }],
          });
        }
        const original = payload.sample.tests ?? [];
        const stray = Object.keys(body.tests).filter((code) => !original.includes(code));
        if (stray.length) {
          throw problems.unprocessable('unknown-mapping', `not a test code of this order: ${stray.join(', ')}`, {
            errors: stray.map((code) => ({ field: `body.tests.${code}`, detail: 'not in the held order' })),
          });
        }
        const tests = [...new Set(original.map((code) => body.tests[code] ?? code))];
        const types = await checkCodes(db, [{ sampleType, tests }], () => 'body.');
        const mapped: WebhookBody = { ...payload, sample: { ...payload.sample, sampleType, tests } };
        const source = await sourceOf(db, held.source);
        const s = mapped.sample;
        const row = await db.transaction(async (trx) => {
          await trx('sample_held_orders').where({ id: held.id }).forUpdate();
          let sample = await findSampleByExternal(trx, held.source, s.externalId);
          if (!sample) {
            await registerSamples(
              trx,
              [
                {
                  sampleType,
                  priority: s.priority ?? 'routine',
                  requestedTests: tests,
                  externalId: s.externalId,
                  barcode: s.barcode,
                  patient: s.patient,
                  collectedAt: s.collectedAt,
                },
              ],
              {
                source: held.source,
                submitterId: source?.contact_user_id ?? null,
                actor: actor.username,
                actorId: actor.userId,
                workflowIdOf: workflowIds.sampleIntake,
              },
            );
            sample = (await findSampleByExternal(trx, held.source, s.externalId))!;
          }
          await claim(trx, { state: 'resolved', accession: sample.accession, payload: JSON.stringify(mapped) });
          await closeTask(trx, taskKey, 'done', actor.userId);
          await trx('sample_webhook_events')
            .where({ source: held.source, event_id: payload.eventId })
            .update({ applied_at: trx.fn.now(), accession: sample.accession });
          await appendAudit(trx, {
            actor: actor.username,
            actorId: actor.userId,
            action: 'sample.order_released',
            entityType: 'sample_order',
            entityId,
            details: {
              heldOrderId: held.id,
              eventId: payload.eventId,
              accession: sample.accession,
              sampleType: { from: payload.sample.sampleType ?? null, to: sampleType },
              tests: body.tests,
              comment: body.comment ?? null,
            },
          });
          return sample;
        });
        // Applied as the webhook would have: the event goes to the sample's run (started if it does not exist yet).
        await deliverSampleEvent(db, temporal, config.taskQueue, row, types.get(row.sample_type)!, webhookEvent(held.source, mapped));
        ctx.body = { id: held.id, state: 'resolved', accession: row.accession, workflowId: row.workflow_id };
      },
    }),
    route({
      method: 'get',
      path: '/sample-types',
      summary: 'Sample types with their written acceptance criteria, and test codes',
      tag: TAG,
      roles: 'any',
      handler: async ({ ctx }) => {
        ctx.body = { sampleTypes: [...(await sampleTypes(db)).values()], tests: [...(await testCodes(db)).values()] };
      },
    }),
  ];
}
