import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { DocType } from '../../common/routing-templates';
import { testEnv } from '../setup/env';
import type { ApiCaller } from './platform';
import type { TestUser } from './users';
import { waitFor } from './wait';

export const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * A new document with its first version as a draft. A form's routing template asks for one review stage; the
 * tests of an SOP's full routing (technical review, QA approval, document control last) pass docType 'sop'.
 */
export async function createDraft(
  p: ApiCaller,
  author: TestUser,
  content = `Form text ${Math.random()}`,
  title = 'Pipette calibration record',
  docType: DocType = 'form',
) {
  const doc = await p.api('POST', '/api/v1/documents', { key: author.apiKey, body: { title, docType } });
  assert.equal(doc.status, 201, JSON.stringify(doc.body));
  const version = await addVersion(p, author, doc.body.number, content);
  return { number: doc.body.number as string, version: version.version as number, contentHash: version.contentHash as string };
}

export async function addVersion(p: ApiCaller, author: TestUser, number: string, content: string) {
  const res = await p.api('POST', `/api/v1/documents/${number}/versions`, { key: author.apiKey, body: { content } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

export const versionPath = (number: string, version: number) => `/api/v1/documents/${number}/versions/${version}`;

export async function submit(p: ApiCaller, author: TestUser, number: string, version: number, body: Record<string, unknown>) {
  const res = await p.api('POST', `${versionPath(number, version)}/submit`, { key: author.apiKey, body });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body;
}

export function approve(p: ApiCaller, signer: TestUser, number: string, version: number, contentHash: string, password = signer.password) {
  return p.api('POST', `${versionPath(number, version)}/decisions`, {
    key: signer.apiKey,
    body: { decision: 'approve', signature: { password, meaning: 'approval', contentHash } },
  });
}

export async function getVersion(p: ApiCaller, key: string, number: string, version: number) {
  const res = await p.api('GET', versionPath(number, version), { key });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

/** Waits until the version's state (live or recorded) is the one expected. */
export function waitForState(p: ApiCaller, key: string, number: string, version: number, state: string, timeoutMs = 30_000) {
  return waitFor(
    async () => {
      const v = await getVersion(p, key, number, version);
      return v.state === state ? v : null;
    },
    `${number} v${version} to be ${state}`,
    timeoutMs,
  );
}

/** Waits until the recorded projection (not the live run) says so: what lists and reports read. */
export function waitForRecord(p: ApiCaller, key: string, number: string, version: number, state: string, timeoutMs = 30_000) {
  return waitFor(
    async () => {
      const res = await p.api('GET', `/api/v1/documents/${number}`, { key });
      return res.body.versions?.find((v: { version: number; state: string }) => v.version === version && v.state === state);
    },
    `${number} v${version} recorded as ${state}`,
    timeoutMs,
  );
}

/**
 * Holds a review task's row locked, so the activity recording a decision on it blocks inside its transaction. Roll the
 * returned transaction back to let the write go on.
 */
export async function holdTask(taskKey: string) {
  const lock = await testEnv().db.transaction();
  await lock('tasks').where({ task_key: taskKey }).forUpdate().first('task_key');
  return lock;
}

/**
 * Waits until the worker's write of a decision waits on a task row holdTask holds, and checks that the run's
 * recording activity is pending: the run has accepted the decision and its record is in flight, not written.
 */
export async function waitForHeldDecision(workflowId: string, what: string) {
  const { db, client } = testEnv();
  await waitFor(
    async () =>
      (
        await db.raw(
          `select 1 from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock' and query ilike 'update "tasks"%'`,
        )
      ).rows.length > 0,
    `the worker's write of ${what} waiting on the lock`,
  );
  const pending = (await client.workflow.getHandle(workflowId).describe()).raw.pendingActivities ?? [];
  assert.ok(
    pending.some((a) => a.activityType?.name === 'recordDecision'),
    `${what} is being recorded`,
  );
}
