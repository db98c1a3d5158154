import type { UpdateDefinition } from '@temporalio/client';
import type { z } from 'zod';
import {
  boundInstrumentArgs,
  finishMaintenanceUpdate,
  INSTRUMENT_ACTION_ROLES,
  INSTRUMENT_REGISTRARS,
  planMaintenanceUpdate,
  recordCalibrationUpdate,
  recordQcUpdate,
  reportDefectUpdate,
  retireInstrumentUpdate,
  returnToServiceUpdate,
  startMaintenanceUpdate,
  validityProblem,
  type InstrumentAction,
  type InstrumentState,
} from '../../common/equipment';
import type { Actor, Role } from '../../common/roles';
import type { SignatureInput } from '../../common/signatures';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import {
  calibrationBody,
  calibrationsDueQuery,
  defectBody,
  finishMaintenanceBody,
  instrumentAnswer,
  instrumentListQuery,
  instrumentPage,
  instrumentParams,
  instrumentRegistered,
  planMaintenanceBody,
  qcBody,
  registerInstrumentBody,
  retireBody,
  returnToServiceBody,
  startMaintenanceBody,
} from '../schemas/equipment';
import { calibrationsDue, instrumentRun, instrumentView, listInstruments, loadInstrument, registerInstrument } from '../services/equipment';
import { grantAction, verifySigner } from '../signing';

const TAG = 'equipment';
type Params = z.infer<typeof instrumentParams>;
const READERS: Role[] = ['lab_technician', 'lab_director', 'qa_manager', 'admin'];
const location = (code: string) => `/api/v1/instruments/${code}`;

export function equipmentRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;

  /**
   * One person's action on an instrument: a retired instrument is 409; the API writes the single-use grant the
   * recording step consumes and sends the run the request with its ID; the Update's validator judges it; the answer
   * is the instrument as the register shows it.
   */
  function instrumentAction<B, A extends object>(spec: {
    name: string;
    summary: string;
    body: z.ZodType<B>;
    update: UpdateDefinition<InstrumentState, [A & { actor: Actor; grant: string }]>;
    action: InstrumentAction;
    problems: readonly number[];
    toArgs: (body: B, actor: Actor, code: string) => Promise<A & { signature?: SignatureInput }> | (A & { signature?: SignatureInput });
  }): RouteSpec {
    return route<Params, Record<string, never>, B>({
      method: 'post',
      path: `/instruments/:code/${spec.name}`,
      summary: spec.summary,
      tag: TAG,
      roles: INSTRUMENT_ACTION_ROLES[spec.action] as Role[],
      params: instrumentParams,
      body: spec.body,
      response: instrumentAnswer,
      problems: [...new Set([403, 404, 409, 422, ...spec.problems])],
      handler: async ({ params, body, actor, ctx }) => {
        const row = await loadInstrument(db, params.code);
        const run = instrumentRun(deps, row);
        const args = await spec.toArgs(body, actor, row.code);
        const grant = await grantAction(deps, actor, {
          workflowId: row.workflow_id,
          action: spec.action,
          args: boundInstrumentArgs(spec.action, args),
          signature: args.signature,
        });
        await run.executeUpdate(spec.update, { args: [{ ...args, actor, grant }] });
        ctx.body = await instrumentView(db, params.code);
      },
    });
  }

  return [
    route<Record<string, never>, Record<string, never>, z.infer<typeof registerInstrumentBody>>({
      method: 'post',
      path: '/instruments',
      summary: 'Register an instrument (QA or the lab director): it starts commissioning, its run `instrument:<code>` starts',
      tag: TAG,
      roles: INSTRUMENT_REGISTRARS as Role[],
      body: registerInstrumentBody,
      response: { 202: instrumentRegistered },
      problems: [409, 422],
      handler: async ({ body, actor, ctx }) => {
        const registered = await registerInstrument(deps, actor, body);
        ctx.status = 202;
        ctx.set('Location', location(registered.code));
        ctx.body = registered;
      },
    }),
    route<Record<string, never>, z.infer<typeof instrumentListQuery>>({
      method: 'get',
      path: '/instruments',
      summary: 'The equipment list with status labels and last and next calibration (17025 6.4.8), by identifier, keyset-paged',
      tag: TAG,
      roles: READERS,
      query: instrumentListQuery,
      response: instrumentPage,
      handler: async ({ query, ctx }) => {
        ctx.body = await listInstruments(db, query);
      },
    }),
    route<Record<string, never>, z.infer<typeof calibrationsDueQuery>>({
      method: 'get',
      path: '/instruments/calibrations-due',
      summary: 'Instruments whose calibration ends within `days` (default 30) or has ended, soonest first, keyset-paged',
      tag: TAG,
      roles: READERS,
      query: calibrationsDueQuery,
      response: instrumentPage,
      handler: async ({ query, ctx }) => {
        ctx.body = await calibrationsDue(db, query);
      },
    }),
    route<Params>({
      method: 'get',
      path: '/instruments/:code',
      summary: 'An instrument as the register holds it (17025 6.4.13): identity, state, usability now, calibrations, history',
      tag: TAG,
      roles: READERS,
      params: instrumentParams,
      response: instrumentAnswer,
      handler: async ({ params, ctx }) => {
        ctx.body = await instrumentView(db, params.code);
      },
    }),
    instrumentAction({
      name: 'calibrations',
      summary:
        'Record a calibration certificate, reviewed and signed (meaning "review", content hash = the document hash) by someone other than its preparer; it replaces the current one',
      body: calibrationBody,
      update: recordCalibrationUpdate,
      action: 'instrument.calibrate',
      problems: [423],
      toArgs: async ({ signature, ...facts }, actor, code) => {
        const problem = validityProblem(facts.validFrom, facts.validTo);
        if (problem) throw problems.unprocessable('invalid-validity', problem);
        if (Date.parse(facts.validFrom) > Date.now()) throw problems.unprocessable('invalid-validity', 'a certificate takes effect when it is recorded: validFrom must not be in the future');
        if (facts.preparedBy === actor.username) throw problems.forbidden('the reviewer of a calibration certificate is not the person who prepared it');
        if (signature.meaning !== 'review') throw problems.unprocessable('wrong-signature-meaning', `this signature means "review", not "${signature.meaning}"`);
        if (signature.contentHash !== facts.documentHash) {
          throw problems.unprocessable('wrong-content-hash', "the reviewer signs the certificate's document: the signature's content hash is its documentHash");
        }
        return { ...facts, signature: await verifySigner(deps, actor, signature, { entityType: 'instrument', entityId: code }) };
      },
    }),
    instrumentAction({
      name: 'qc',
      summary: 'Record a QC run: a failure takes the instrument out of service, lists the results since the last pass and opens or links a CAPA',
      body: qcBody,
      update: recordQcUpdate,
      action: 'instrument.qc',
      problems: [],
      toArgs: (body) => body,
    }),
    instrumentAction({
      name: 'defects',
      summary: 'Report a defect or damage: out of service, the results since the last passing QC listed, a CAPA opened or linked',
      body: defectBody,
      update: reportDefectUpdate,
      action: 'instrument.report_defect',
      problems: [],
      toArgs: (body) => body,
    }),
    instrumentAction({
      name: 'maintenance/start',
      summary: 'Start maintenance or repair (optionally of a plan): out of service until it is finished and verified',
      body: startMaintenanceBody,
      update: startMaintenanceUpdate,
      action: 'instrument.start_maintenance',
      problems: [],
      toArgs: (body) => body,
    }),
    instrumentAction({
      name: 'maintenance/finish',
      summary: 'Finish the maintenance or repair under way, with its outcome',
      body: finishMaintenanceBody,
      update: finishMaintenanceUpdate,
      action: 'instrument.finish_maintenance',
      problems: [],
      toArgs: (body) => body,
    }),
    instrumentAction({
      name: 'maintenance-plans',
      summary: 'Plan maintenance with a due date: QA and the lab are told when it falls due',
      body: planMaintenanceBody,
      update: planMaintenanceUpdate,
      action: 'instrument.plan_maintenance',
      problems: [],
      toArgs: (body) => body,
    }),
    instrumentAction({
      name: 'return-to-service',
      summary: 'Put the instrument (back) into service with a verification record (17025 6.4.4); without one 422',
      body: returnToServiceBody,
      update: returnToServiceUpdate,
      action: 'instrument.return_to_service',
      problems: [],
      toArgs: (body) => {
        if (!body.verification) {
          throw problems.unprocessable('verification-record-required', 'returning an instrument to service needs a verification record: {"verification":{"summary":"…","documentHash":"…"}}');
        }
        return { verification: body.verification };
      },
    }),
    instrumentAction({
      name: 'retire',
      summary: 'Retire the instrument with a reason; its record stays',
      body: retireBody,
      update: retireInstrumentUpdate,
      action: 'instrument.retire',
      problems: [],
      toArgs: (body) => body,
    }),
  ];
}
