import { randomBytes } from 'node:crypto';
import type { UpdateDefinition } from '@temporalio/client';
import { z } from 'zod';
import { workflowIds } from '../../common/ids';
import type { Role } from '../../common/roles';
import { sampleGrantedArgs, type SampleAction } from '../../common/sample-intake-grants';
import type { SignatureInput } from '../../common/signatures';
import {
  acceptUpdate,
  acceptWithDeviationUpdate,
  aliquotUpdate,
  attachOrderUpdate,
  cancelUpdate,
  inspectUpdate,
  receiveUpdate,
  reinstateUpdate,
  rejectUpdate,
  routeUpdate,
  storeUpdate,
  type SampleIntakeState,
} from '../../common/sample-intake';
import { findActiveUser } from '../../db/identity';
import { listHeldOrders } from '../../db/sample-held-orders';
import {
  custodyTrail,
  listSamples,
  pieceOf,
  recordHandoff,
  registerSource,
  sampleTypes,
  storageHolder,
  testCodes,
} from '../../db/sample-intake';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, updateRoute, type RouteInput, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import {
  BATCH_BODY_LIMIT_BYTES,
  accessionParams,
  aliquotBody,
  batchBody,
  custodyBody,
  deviationBody,
  heldOrderParams,
  inspectBody,
  listQuery,
  orderBody,
  orderingProviderBody,
  reasonBody,
  receiveBody,
  registerBody,
  rejectBody,
  resolveHeldOrderBody,
  routeBody,
  sourceBody,
  storeBody,
} from '../schemas/sample-intake';
import {
  checkCodes,
  inspectionFindings,
  loadSample,
  registerSample,
  requireSampleAccess,
  registerSampleBatch,
  resolveHeldOrder,
  runOf,
  sampleBatchProgress,
  sampleView,
  setSampleOrderingProvider,
  viewAfterUpdate,
} from '../services/sample-intake';
import { grantAction, verifySigner } from '../signing';
import { SAMPLE_ACCEPTANCE_WITH_DEVIATION } from '../../db/gate';
import { requireGate } from '../services/training';

const LAB = ['lab_technician', 'lab_director'] as const;
const SUBMITTERS = ['lab_technician', 'lab_director', 'clinician'] as const;
const TAG = 'sample intake';
const located = (accession: string) => `/api/v1/samples/${accession}`;

type Params = z.infer<typeof accessionParams>;

const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

export function sampleIntakeRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;

  /**
   * One person's action on a sample's run: a clinician may act only on a sample they submitted (403); the API writes
   * the single-use grant the recording step consumes (bound to the arguments the run records) and sends the run the
   * request with the grant's ID; the Update's validator judges it; the answer is the sample as the API shows it,
   * with the state the run answered.
   */
  function sampleAction<B, A extends { grant?: string }>(spec: {
    name: string;
    summary: string;
    roles: readonly Role[];
    body?: z.ZodType<B>;
    update: UpdateDefinition<SampleIntakeState, [A]>;
    action: SampleAction;
    /** What the grant binds (common/sample-intake-grants.ts), and the signature it was re-authenticated for. */
    bound: (args: Omit<A, 'grant'>) => unknown;
    signature?: (args: Omit<A, 'grant'>) => SignatureInput;
    toArgs: (input: RouteInput<Params, Record<string, never>, B>) => Promise<Omit<A, 'grant'>> | Omit<A, 'grant'>;
  }): RouteSpec {
    const { name, action: granted, bound, signature, toArgs, ...rest } = spec;
    const action = updateRoute<Params, B, A, SampleIntakeState>({
      ...rest,
      method: 'post',
      path: `/samples/:accession/${name}`,
      response: R.sampleView,
      problems: signature ? [423] : [],
      tag: TAG,
      params: accessionParams,
      run: async ({ accession }, actor) => {
        const row = await loadSample(db, accession);
        requireSampleAccess(row, actor);
        return runOf(deps, row);
      },
      toArgs: async (input) => {
        const args = await toArgs(input);
        const grant = await grantAction(deps, input.actor, {
          workflowId: workflowIds.sampleIntake(input.params.accession),
          action: granted,
          args: bound(args),
          signature: signature?.(args),
        });
        return { ...args, grant } as A;
      },
    });
    return {
      ...action,
      handler: async (input) => {
        await action.handler(input);
        const { accession } = input.params as Params;
        input.ctx.body = await viewAfterUpdate(deps, accession, input.ctx.body as SampleIntakeState);
      },
    };
  }

  return [
    route({
      method: 'post',
      path: '/samples',
      response: { 202: R.sampleStarted }, problems: [409, 422],
      summary: 'Register a sample (accession number assigned) and start its intake run → 202 with the run',
      tag: TAG,
      roles: SUBMITTERS,
      body: registerBody,
      handler: async ({ body, actor, ctx }) => {
        const { accession, workflowId } = await registerSample(deps, body, actor);
        ctx.status = 202;
        ctx.set('Location', located(accession));
        ctx.body = { accession, workflowId, state: 'expected', location: located(accession) };
      },
    }),
    route({
      method: 'get',
      path: '/samples',
      response: R.page(R.sampleRow),
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
      response: R.sampleView,
      summary: 'A sample: live state from its run while it runs, aliquots, storage, routes, signatures',
      tag: TAG,
      roles: 'any',
      params: accessionParams,
      handler: async ({ params, ctx }) => {
        ctx.body = await sampleView(deps, await loadSample(db, params.accession));
      },
    }),
    route({
      method: 'put',
      path: '/samples/:accession/ordering-provider',
      response: R.sampleOrderingProvider,
      problems: [404, 409, 422],
      summary:
        'Set or correct the requisition’s ordering provider (a clinician), with a reason; open critical calls of the sample take it; refused once a call of the sample was confirmed',
      tag: TAG,
      roles: LAB,
      params: accessionParams,
      body: orderingProviderBody,
      handler: async ({ params, body, actor, ctx }) => {
        ctx.body = await setSampleOrderingProvider(deps, params.accession, body, actor);
      },
    }),
    route({
      method: 'get',
      path: '/samples/:accession/custody',
      response: R.custody,
      summary: 'The chain of custody of a sample and its aliquots, oldest first',
      tag: TAG,
      roles: 'any',
      params: accessionParams,
      handler: async ({ params, ctx }) => {
        const row = await loadSample(db, params.accession);
        ctx.body = { accession: row.accession, items: await custodyTrail(db, row.id) };
      },
    }),
    route({
      method: 'post',
      path: '/samples/:accession/custody',
      response: { 201: R.custody }, problems: [409, 422],
      summary: 'Record a handoff (who, when, from where to where, condition); appended, never changed',
      tag: TAG,
      roles: LAB,
      params: accessionParams,
      body: custodyBody,
      handler: async ({ params, body, actor, ctx }) => {
        const row = await loadSample(db, params.accession);
        const { piece: pieceAccession, ...handoff } = body;
        const piece = pieceAccession ? await pieceOf(db, row.id, pieceAccession) : row;
        if (!piece) throw problems.unprocessable('unknown-piece', `${pieceAccession} is not part of ${row.accession}`);
        await recordHandoff(db, row, piece, handoff, actor);
        ctx.status = 201;
        ctx.body = { accession: row.accession, items: await custodyTrail(db, row.id) };
      },
    }),
    sampleAction({
      name: 'receive',
      summary: 'Receive the specimen: who (you), when (server UTC), where, temperature',
      roles: LAB,
      body: receiveBody,
      update: receiveUpdate,
      action: 'sample.receive',
      bound: sampleGrantedArgs.receive,
      toArgs: async ({ params, body, actor }) => {
        const row = await loadSample(db, params.accession);
        const receivedAt = new Date().toISOString();
        const collectedAt = body.collectedAt ?? (row.collected_at ? row.collected_at.toISOString() : undefined);
        if (collectedAt && Date.parse(collectedAt) > Date.parse(receivedAt)) {
          throw problems.unprocessable(
            'collection-after-receipt',
            `the collection time ${collectedAt} is after the receipt ${receivedAt}`,
            {
              errors: [{ field: 'body.collectedAt', detail: 'after receipt' }],
            },
          );
        }
        const { location, temperatureC, condition } = body;
        return { actor, by: actor.username, receivedAt, location, temperatureC, collectedAt: body.collectedAt, condition };
      },
    }),
    sampleAction({
      name: 'inspect',
      summary: 'Record the inspection against the sample type’s written acceptance criteria',
      roles: LAB,
      body: inspectBody,
      update: inspectUpdate,
      action: 'sample.inspect',
      bound: sampleGrantedArgs.inspect,
      toArgs: async ({ params, body, actor }) => ({
        actor,
        findings: await inspectionFindings(deps, await loadSample(db, params.accession), body),
      }),
    }),
    sampleAction({
      name: 'accept',
      summary: 'Accept a specimen that meets every criterion',
      roles: LAB,
      update: acceptUpdate,
      action: 'sample.accept',
      bound: sampleGrantedArgs.accept,
      toArgs: ({ actor }) => ({ actor }),
    }),
    sampleAction({
      name: 'accept-with-deviation',
      summary: 'Accept despite failed criteria: lab director’s signature over the inspection hash and a comment for the report',
      roles: ['lab_director'],
      body: deviationBody,
      update: acceptWithDeviationUpdate,
      action: 'sample.accept_with_deviation',
      bound: sampleGrantedArgs.acceptWithDeviation,
      signature: (args) => args.signature,
      toArgs: async ({ params, body, actor }) => {
        await requireGate(deps, actor, { activity: SAMPLE_ACCEPTANCE_WITH_DEVIATION }, { entityType: 'sample', entityId: params.accession });
        const signature = await verifySigner(deps, actor, body.signature, { entityType: 'sample', entityId: params.accession });
        return { actor, comment: body.comment, signature };
      },
    }),
    sampleAction({
      name: 'reject',
      summary: 'Reject (HL7 0490 code, condition, disposition), for all or some requested tests',
      roles: LAB,
      body: rejectBody,
      update: rejectUpdate,
      action: 'sample.reject',
      bound: sampleGrantedArgs.reject,
      toArgs: ({ body, actor }) => ({ actor, ...body }),
    }),
    sampleAction({
      name: 'aliquot',
      summary: 'Split into aliquots (children get <accession>-A<n>)',
      roles: LAB,
      body: aliquotBody,
      update: aliquotUpdate,
      action: 'sample.aliquot',
      bound: sampleGrantedArgs.aliquot,
      toArgs: ({ body, actor }) => ({ actor, ...body }),
    }),
    sampleAction({
      name: 'store',
      summary: 'Store the sample or an aliquot at freezer/rack/box/position (one sample per position)',
      roles: LAB,
      body: storeBody,
      update: storeUpdate,
      action: 'sample.store',
      bound: sampleGrantedArgs.store,
      toArgs: async ({ params, body, actor }) => {
        const piece = body.piece ?? params.accession;
        const holder = await storageHolder(db, body);
        if (holder && holder !== piece) {
          throw problems.conflict(
            'position-taken',
            `position ${body.freezer}/${body.rack}/${body.box}/${body.position} already holds ${holder}`,
          );
        }
        return { actor, ...body, piece };
      },
    }),
    sampleAction({
      name: 'route',
      summary: 'Route tests to their work queues (all accepted, unrouted tests when none are named)',
      roles: LAB,
      body: routeBody,
      update: routeUpdate,
      action: 'sample.route',
      bound: sampleGrantedArgs.route,
      toArgs: ({ params, body, actor }) => ({
        actor,
        tests: body.tests?.map(({ test, piece }) => ({ test, piece: piece ?? params.accession })),
      }),
    }),
    sampleAction({
      name: 'order',
      summary: 'Attach an order to a specimen that arrived without one',
      roles: SUBMITTERS,
      body: orderBody,
      update: attachOrderUpdate,
      action: 'sample.attach_order',
      bound: sampleGrantedArgs.attachOrder,
      toArgs: async ({ params, body, actor }) => {
        const row = await loadSample(db, params.accession);
        await checkCodes(db, [{ sampleType: row.sample_type, tests: body.tests }], () => 'body.');
        return { actor, tests: body.tests };
      },
    }),
    sampleAction({
      name: 'cancel',
      summary: 'Cancel (reason); it can be reinstated',
      roles: SUBMITTERS,
      body: reasonBody,
      update: cancelUpdate,
      action: 'sample.cancel',
      bound: sampleGrantedArgs.cancel,
      toArgs: ({ body, actor }) => ({ actor, reason: body.reason }),
    }),
    sampleAction({
      name: 'reinstate',
      summary: 'Reinstate a cancelled sample where it was',
      roles: LAB,
      body: reasonBody,
      update: reinstateUpdate,
      action: 'sample.reinstate',
      bound: sampleGrantedArgs.reinstate,
      toArgs: ({ body, actor }) => ({ actor, reason: body.reason }),
    }),

    route({
      method: 'post',
      path: '/sample-batches',
      response: { 202: R.batch }, problems: [409, 422],
      summary: 'Register up to 5000 samples at once; one run per sample is started by a batch run → 202',
      tag: TAG,
      roles: LAB,
      body: batchBody,
      bodyLimitBytes: BATCH_BODY_LIMIT_BYTES,
      handler: async ({ body, actor, ctx }) => {
        const batch = await registerSampleBatch(deps, body, actor);
        ctx.status = 202;
        ctx.set('Location', `/api/v1/sample-batches/${batch.batchId}`);
        ctx.body = batch;
      },
    }),
    route({
      method: 'get',
      path: '/sample-batches/:batchId',
      response: R.batch,
      summary: 'Batch progress: runs started, samples by state',
      tag: TAG,
      roles: 'any',
      params: z.object({ batchId: z.uuid() }),
      handler: async ({ params, ctx }) => {
        ctx.body = await sampleBatchProgress(deps, params.batchId);
      },
    }),
    route({
      method: 'post',
      path: '/sample-sources',
      response: { 201: R.newSource }, problems: [409, 422],
      summary: 'Register a webhook source; its HMAC secret is shown once',
      tag: TAG,
      roles: ['admin'],
      body: sourceBody,
      handler: async ({ body, actor, ctx }) => {
        const contact = body.contact ? await findActiveUser(db, body.contact) : undefined;
        if (body.contact && !contact) throw problems.unprocessable('unknown-user', `no user "${body.contact}"`);
        const secret = `whsec_${randomBytes(24).toString('base64url')}`;
        try {
          await registerSource(db, { name: body.name, secret, contactUserId: contact?.id ?? null, contact: body.contact ?? null }, actor);
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
      response: R.list(R.heldOrder),
      summary: 'External orders held for a person (unknown sample type or test codes)',
      tag: TAG,
      roles: LAB,
      query: z.object({ state: z.enum(['held', 'resolved', 'discarded']).default('held') }),
      handler: async ({ query, ctx }) => {
        ctx.body = { items: await listHeldOrders(db, query.state) };
      },
    }),
    route({
      method: 'post',
      path: '/sample-held-orders/:id/resolve',
      response: R.heldOrder, problems: [409, 422],
      summary:
        'Resolve a held order: map its unknown codes to known ones and release it (registered and applied as the webhook would have), or dismiss it with a reason',
      tag: TAG,
      roles: LAB,
      params: heldOrderParams,
      body: resolveHeldOrderBody,
      handler: async ({ params, body, actor, ctx }) => {
        ctx.body = await resolveHeldOrder(deps, params.id, body, actor);
      },
    }),
    route({
      method: 'get',
      path: '/sample-types',
      response: R.sampleCatalogue,
      summary: 'Sample types with their written acceptance criteria, and test codes',
      tag: TAG,
      roles: 'any',
      handler: async ({ ctx }) => {
        ctx.body = { sampleTypes: [...(await sampleTypes(db)).values()], tests: [...(await testCodes(db)).values()] };
      },
    }),
  ];
}
