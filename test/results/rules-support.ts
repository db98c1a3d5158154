import { testEnv } from '../setup/env';
import type { Platform } from '../helpers/platform';
import type { TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { hoursAgo, inspected, mustAct, tag } from '../sample-intake/support';
import { mustAnalysisAct, sign } from './support';

/** A patient of the test's own (an MRN no other test uses), so delta checks compare only its results. */
export const patientOf = () => ({ name: 'Grace Hopper', dob: '1906-12-09', mrn: `MRN-${tag()}`, sex: 'female' });

/** A sample for this patient, collected `hours` ago, accepted and routed, once its analyses are open. */
export async function routedFor(
  p: Platform,
  doc: TestUser,
  tech: TestUser,
  tests: string[],
  patient: { name: string; mrn: string } & Record<string, unknown>,
  hours = 1,
  findings: Record<string, unknown> = {},
) {
  const identifiers = [
    { type: 'name', value: patient.name },
    { type: 'mrn', value: patient.mrn },
  ];
  const { accession } = await inspected(p, doc, tech, { tests, patient, collectedAt: hoursAgo(hours) }, { identifiers, ...findings });
  await mustAct(p, tech, accession, 'accept');
  await mustAct(p, tech, accession, 'route', {});
  await waitFor(
    async () => Number((await testEnv().db('analyses').where({ accession }).count({ n: '*' }))[0].n) === tests.length,
    `analyses of ${accession}`,
  );
  return accession;
}

/** Sets a test's policy columns beyond those `testCode` takes (measuring range, delta limit). */
export const setPolicy = (test: string, columns: Record<string, unknown>) => testEnv().db('test_result_policies').where({ test_code: test }).update(columns);

/** A numeric value entered, submitted and verified by another technician. */
export async function verifiedValue(p: Platform, tech: TestUser, verifier: TestUser, accession: string, test: string, value: number, unit = 'mmol/L') {
  await mustAnalysisAct(p, tech, accession, test, 'result', { kind: 'numeric', value, unit, performedBy: 'bench 1' });
  await mustAnalysisAct(p, tech, accession, test, 'submit');
  const verified = await sign(p, verifier, accession, test, 'verify');
  if (verified.status !== 200) throw new Error(`verify answered ${verified.status}: ${JSON.stringify(verified.body)}`);
  return verified.body;
}
