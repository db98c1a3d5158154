import assert from 'node:assert/strict';
import type { Platform } from '../helpers/platform';
import type { TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

export const capaPath = (number: string) => `/api/v1/capas/${number}`;
export const inHours = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();
/** Short durations so a whole lifecycle runs in seconds; a QA manager sets them at triage (only QA may shorten them). */
export const fast = { containment: '1h', investigation: '1h', effectivenessWait: '1s', reminderBefore: '10m' };

export async function createCapa(p: Platform, by: TestUser, body: Record<string, unknown> = {}) {
  const res = await p.api('POST', '/api/v1/capas', {
    key: by.apiKey,
    body: { title: 'Haemolysed samples from ward 3', description: 'Repeated haemolysis on morning draws.', ...body },
  });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  // The run's first step has written the record (row, sources, task) once the projection says triage.
  await waitFor(
    async () => (await testEnv().db('capas').where({ number: res.body.number, stage: 'triage' }).first()) ?? null,
    'the CAPA record',
  );
  return res.body as { number: string; workflowId: string; runId: string };
}

export async function getCapa(p: Platform, by: TestUser, number: string) {
  const res = await p.api('GET', capaPath(number), { key: by.apiKey });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

export function waitForStage(p: Platform, by: TestUser, number: string, stage: string, timeoutMs = 30_000) {
  return waitFor(
    async () => {
      const c = await getCapa(p, by, number);
      return c.stage === stage ? c : null;
    },
    `${number} to be ${stage}`,
    timeoutMs,
  );
}

/** Posts an action and expects the status; answers the body. */
export async function act(p: Platform, by: TestUser, number: string, path: string, body: unknown, status = 200) {
  const res = await p.api('POST', `${capaPath(number)}${path}`, { key: by.apiKey, body });
  assert.equal(res.status, status, `${path}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export const sign = (u: TestUser, contentHash: string, meaning = 'approval') => ({ password: u.password, meaning, contentHash });

/** Triage → containment → investigation → plan → signed approval: the CAPA ends in implementation. */
export async function toImplementation(
  p: Platform,
  u: { qa: TestUser; owner: TestUser },
  number: string,
  actions: { type: string; description: string; owner: { user: string } | { role: 'qa_manager' }; dueAt: string }[],
  durations: Record<string, string> = fast,
) {
  await act(p, u.qa, number, '/triage', { decision: 'accept', severity: 4, occurrence: 3, owner: u.owner.username, durations });
  await act(p, u.owner, number, '/containment', { summary: 'Quarantined affected tubes', actions: ['Hold ward 3 samples'] });
  await act(p, u.owner, number, '/investigation', {
    method: 'five_whys',
    rootCause: 'Tourniquet left on too long',
    findings: 'Observed on 12 draws',
  });
  const planned = await act(p, u.owner, number, '/plan', {
    actions,
    criteria: [{ description: 'Haemolysis rate', measure: 'below 2% over 4 weeks' }],
  });
  assert.equal(planned.stage, 'plan_approval');
  const approved = await act(p, u.qa, number, '/plan/decision', { decision: 'approve', signature: sign(u.qa, planned.plan.contentHash) });
  assert.equal(approved.stage, 'implementation');
  return approved;
}
