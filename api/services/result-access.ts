import type { Context } from 'koa';
import type { Actor } from '../../common/roles';
import type { SampleRow } from '../../db/sample-intake';
import type { ApiDeps } from '../deps';
import { phiAccessLog, type PhiRead } from '../patient-access';
import { problems } from '../problem';

type Db = ApiDeps['db'];

const LAB_ROLES = ['lab_technician', 'lab_director'];

/** Lab technicians and the lab director: they see a sample's results as they are worked on, before any release. */
export const isLabStaff = (actor: Actor) => actor.roles.some((r) => LAB_ROLES.includes(r));

/** The patient records a sample's requisition names (by MRN): the patients a read of its results concerns. */
export async function patientsOf(db: Db, sample: Pick<SampleRow, 'id'>): Promise<string[]> {
  const mrn = (await db('samples').where({ id: sample.id }).first('patient_mrn'))?.patient_mrn;
  return mrn ? db('patients').where({ mrn }).pluck('id') : [];
}

/**
 * Who reads a sample's results as they stand (its analyses, every version of its reports): lab staff, the clinician
 * who submitted it and the clinician it names as its ordering provider now. A provider the sample no longer names
 * is not among them: what they read is what was delivered to them (report versions), nothing more.
 */
export const readsSampleResults = (sample: Pick<SampleRow, 'submitter_id' | 'ordering_provider_id'>, actor: Actor): boolean =>
  isLabStaff(actor) ||
  (sample.submitter_id !== null && sample.submitter_id === actor.userId) ||
  (sample.ordering_provider_id !== null && sample.ordering_provider_id === actor.userId);

/** A refused read of a sample's results: a PHI access event (denied, naming the patients and records), then 403. */
export async function refuseResultRead(deps: ApiDeps, ctx: Context, actor: Actor, read: PhiRead, why: string): Promise<never> {
  await phiAccessLog(deps).denied(ctx, actor, read);
  throw problems.forbidden(why);
}

/**
 * Who reads a sample's analyses: those who read its results as they stand (above); the care team reads the released
 * reports, and a replaced ordering provider the versions delivered to them, not the analyses. A refusal is a PHI
 * access event naming the analyses (`recordIds` is read only then). Answers the patients the read concerns.
 */
export async function requireAnalysisAccess(
  deps: ApiDeps,
  sample: SampleRow,
  actor: Actor,
  ctx: Context,
  read: { kind: PhiRead['kind']; recordIds: () => Promise<string[]> },
): Promise<string[]> {
  const patientIds = await patientsOf(deps.db, sample);
  if (readsSampleResults(sample, actor)) return patientIds;
  return refuseResultRead(
    deps,
    ctx,
    actor,
    { kind: read.kind, patientIds, recordIds: await read.recordIds() },
    `the analyses of ${sample.accession} are read by lab staff, its submitter and its ordering provider`,
  );
}
