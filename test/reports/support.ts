import { createHash } from 'node:crypto';
import type { Platform, PlatformOptions } from '../helpers/platform';
import type { TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { mustAnalysisAct, routedSample, sign, testCode } from '../results/support';
import { inspected, mustAct } from '../sample-intake/support';

export const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
export const problem = (type: string) => `urn:labflow:problem:${type}`;
export const reportUrl = (accession: string, version?: number, action = '') =>
  `/api/v1/samples/${accession}/reports${version ? `/v${version}` : ''}${action ? `/${action}` : ''}`;

/** A numeric result entered by one technician, submitted and verified by another. */
export async function verifiedResult(p: Platform, u: Record<'tech' | 'tech2', TestUser>, accession: string, test: string, value = 4.2) {
  await mustAnalysisAct(p, u.tech, accession, test, 'result', {
    kind: 'numeric',
    value,
    unit: 'mmol/L',
    performedBy: 'bench 3',
    instrument: 'COBAS-E411-02',
  });
  await mustAnalysisAct(p, u.tech, accession, test, 'submit');
  const verified = await sign(p, u.tech2, accession, test, 'verify');
  if (verified.status !== 200) throw new Error(`verify answered ${verified.status}: ${JSON.stringify(verified.body)}`);
}

/** The report version once its run has assembled it (awaiting release), as the lab director reads it. */
export async function assembled(p: Platform, director: TestUser, accession: string, version = 1) {
  // The run's assembly writes the content (a correction's row is written first by the API, without it).
  await waitFor(
    async () => (await testEnv().db('reports').where({ accession, version }).whereNotNull('content').first('id')) ?? null,
    `report v${version} of ${accession} assembled`,
  );
  const res = await p.api('GET', reportUrl(accession, version), { key: director.apiKey });
  if (res.status !== 200) throw new Error(`report read answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function release(p: Platform, director: TestUser, accession: string, version: number, extra: Record<string, unknown> = {}) {
  const { contentHash } = (await p.api('GET', reportUrl(accession, version), { key: director.apiKey })).body;
  return p.api('POST', reportUrl(accession, version, 'release'), {
    key: director.apiKey,
    body: { signature: { password: director.password, meaning: 'responsibility', contentHash }, ...extra },
  });
}

/** Waits for the version's assembly and releases it as the lab director; throws unless the release is accepted. */
export async function assembledAndReleased(p: Platform, director: TestUser, accession: string, version = 1) {
  await assembled(p, director, accession, version);
  const released = await release(p, director, accession, version);
  if (released.status !== 200) throw new Error(`release of v${version} answered ${released.status}: ${JSON.stringify(released.body)}`);
}

/** A report's PDF as the client downloads it: status, media type and the raw bytes. */
export async function pdfOf(p: Platform, user: TestUser, accession: string, version: number) {
  const res = await fetch(`${p.baseUrl}${reportUrl(accession, version, 'pdf')}`, { headers: { authorization: `Bearer ${user.apiKey}` } });
  return { status: res.status, type: res.headers.get('content-type') ?? '', bytes: Buffer.from(await res.arrayBuffer()) };
}

export const runClosed = (workflowId: string) =>
  waitFor(
    async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED',
    `${workflowId} closed`,
    60_000,
  );

/** A sample for a patient of its own MRN, accepted and routed for these tests once each test's analysis is open. */
export async function routedForPatient(p: Platform, doc: TestUser, tech: TestUser, tests: string[], mrn: string) {
  const patient = { name: 'Ada Lovelace', dob: '1915-12-10', mrn, sex: 'female' };
  const { accession } = await inspected(
    p,
    doc,
    tech,
    { tests, patient },
    {
      identifiers: [
        { type: 'name', value: patient.name },
        { type: 'mrn', value: mrn },
      ],
    },
  );
  await mustAct(p, tech, accession, 'accept');
  await mustAct(p, tech, accession, 'route', {});
  await waitFor(
    async () => Number((await testEnv().db('analyses').where({ accession }).count({ n: '*' }))[0].n) === tests.length,
    `analyses of ${accession}`,
  );
  return accession;
}

/**
 * Holds a report run's assembly once its record is written (awaiting release, with its content) and before the run
 * learns of it: pass `wrapActivities` to the platform, `hold(workflowId)` before the run starts.
 */
export function assemblyHolds() {
  const holds = new Map<string, { written: () => void; freed: Promise<void> }>();
  const wrapActivities: NonNullable<PlatformOptions['wrapActivities']> = (activities) => ({
    ...activities,
    async assembleReport(args) {
      const assembled = await activities.assembleReport(args);
      const hold = holds.get(args.workflowId);
      holds.delete(args.workflowId); // a retry is not held again
      if (hold) {
        hold.written();
        await hold.freed;
      }
      return assembled;
    },
  });
  const hold = (workflowId: string) => {
    let written!: () => void;
    let free!: () => void;
    const recordWritten = new Promise<void>((resolve) => (written = resolve));
    holds.set(workflowId, { written, freed: new Promise<void>((resolve) => (free = resolve)) });
    return { recordWritten, free };
  };
  /** A sample routed for a test of its own, whose report's assembly is held once its record is written. */
  const heldSample = async (p: Platform, u: Record<'doc' | 'tech', TestUser>) => {
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    const workflowId = `report:${accession}:v1`;
    return { test, accession, workflowId, ...hold(workflowId) };
  };
  return { wrapActivities, heldSample };
}

/** How many Updates the run's history shows accepted. */
export async function updatesAccepted(workflowId: string): Promise<number> {
  const history = await testEnv().client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length;
}

/**
 * Sends the release and waits until the run has accepted it (it is then waiting for the assembly held by
 * `assemblyHolds`); fails with the answer if the release was answered first. Returns the release still in flight.
 */
export async function releaseAcceptedWhileAssembling(p: Platform, director: TestUser, accession: string, version = 1) {
  const workflowId = `report:${accession}:v${version}`;
  let answered = false;
  const releasing = release(p, director, accession, version).finally(() => (answered = true));
  await waitFor(async () => answered || (await updatesAccepted(workflowId)) > 0, `the release of ${workflowId} accepted or answered`);
  if (answered) {
    const refused = await releasing;
    throw new Error(`the release was answered while the run was assembling: ${refused.status} ${JSON.stringify(refused.body)}`);
  }
  return { releasing, answered: () => answered };
}
