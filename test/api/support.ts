import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { WorkflowNotFoundError } from '@temporalio/common';
import type Koa from 'koa';
import { documentStateQuery } from '../../common/document-approval';
import type { Db } from '../../db/knex';
import { createDraft, getVersion, submit, versionPath } from '../helpers/documents';
import type { ApiResponse, Platform } from '../helpers/platform';
import type { TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

/** The tables a refused request must leave alone. */
export const WATCHED_TABLES = ['documents', 'document_versions', 'signatures', 'tasks', 'audit_events'] as const;
export type Counts = Record<(typeof WATCHED_TABLES)[number], number>;

export const problemType = (slug: string) => `urn:labflow:problem:${slug}`;

/** Asserts a problem+json answer: its status, content type, stable type and, for validation errors, the field. */
export function assertProblem(res: ApiResponse, status: number, slug: string, field?: string): void {
  const context = JSON.stringify({ status: res.status, body: res.body });
  assert.equal(res.status, status, context);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, context);
  assert.equal(res.body.type, problemType(slug), context);
  assert.equal(res.body.status, status, context);
  assert.equal(typeof res.body.title, 'string', context);
  if (field !== undefined) {
    const fields = (res.body.errors ?? []).map((e: { field: string }) => e.field);
    assert.ok(fields.includes(field), `expected an error for field ${field}; got ${JSON.stringify(fields)}`);
  }
}

/**
 * The watched tables' row counts. Audit events written by a run on its own (`system:*` actors: a pre-check
 * finishing, a stage opening, a reminder) are left out: a run of an earlier test may still write them, and a refused
 * request cannot cause one without changing a run, which `refused` checks through the runs it watches.
 */
export async function countRows(db: Db = testEnv().db): Promise<Counts> {
  const rowsOf = (table: (typeof WATCHED_TABLES)[number]) =>
    table === 'audit_events' ? db(table).whereNot('actor', 'like', 'system:%') : db(table);
  const entries = await Promise.all(
    WATCHED_TABLES.map(async (table) => [table, Number((await rowsOf(table).count('* as n').first())?.n ?? 0)] as const),
  );
  return Object.fromEntries(entries) as Counts;
}

interface RunSnapshot {
  historyLength: number;
  status: string;
  state: unknown;
  /** Activities and workflow tasks under way: work that will lengthen the history without any request. */
  busy: number;
}

async function runSnapshot(workflowId: string): Promise<RunSnapshot> {
  const handle = testEnv().client.workflow.getHandle(workflowId);
  const description = await handle.describe();
  const running = description.status.name === 'RUNNING';
  return {
    historyLength: description.historyLength,
    status: description.status.name,
    state: running && description.type === 'documentApprovalWorkflow' ? await handle.query(documentStateQuery) : null,
    busy: running ? (description.raw.pendingActivities?.length ?? 0) + (description.raw.pendingWorkflowTask ? 1 : 0) : 0,
  };
}

interface Snapshot {
  counts: Counts;
  runs: Record<string, RunSnapshot>;
}

async function snapshot(workflowIds: string[]): Promise<Snapshot> {
  const runs = Object.fromEntries(await Promise.all(workflowIds.map(async (id) => [id, await runSnapshot(id)] as const)));
  return { counts: await countRows(), runs };
}

/**
 * Waits until nothing moves any more (row counts and run histories read the same twice in a row), so that
 * background work of an earlier step (an email delivery, a stage opening) is not mistaken for a write.
 */
export async function settled(workflowIds: string[] = []): Promise<Snapshot> {
  let previous = await snapshot(workflowIds);
  for (let i = 0; i < 100; i++) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    const current = await snapshot(workflowIds);
    const idle = Object.values(current.runs).every((run) => run.busy === 0);
    if (idle && JSON.stringify(current) === JSON.stringify(previous)) return current;
    previous = current;
  }
  throw new Error(`the database and runs did not settle: ${JSON.stringify(previous)}`);
}

export async function assertNoRun(workflowId: string): Promise<void> {
  await assert.rejects(
    testEnv().client.workflow.getHandle(workflowId).describe(),
    (err) => err instanceof WorkflowNotFoundError,
    `no run may exist for ${workflowId}`,
  );
}

export interface Untouched {
  /** Runs whose history and state must read the same afterwards. */
  runs?: string[];
  /** Workflow IDs for which no run may exist afterwards. */
  notStarted?: string[];
  /** Audit events the refusal itself is expected to record (a rejected signing password does). */
  auditEvents?: number;
}

/** Performs a request that must be refused, and proves that it started and wrote nothing. */
export async function refused(request: () => Promise<ApiResponse>, expect: Untouched = {}): Promise<ApiResponse> {
  const runs = expect.runs ?? [];
  const before = await settled(runs);
  const res = await request();
  const after = await settled(runs);
  const expected = { ...before.counts, audit_events: before.counts.audit_events + (expect.auditEvents ?? 0) };
  assert.deepEqual(after.counts, expected, `rows written by a refused request: ${JSON.stringify(res.body)}`);
  assert.deepEqual(after.runs, before.runs, `a run changed on a refused request: ${JSON.stringify(res.body)}`);
  for (const id of expect.notStarted ?? []) await assertNoRun(id);
  return res;
}

/** The newest audit events, newest first. */
export async function latestAudit(limit: number, db: Db = testEnv().db) {
  return db('audit_events').orderBy('seq', 'desc').limit(limit).select('seq', 'actor', 'action', 'entity_type', 'entity_id', 'details');
}

/** Serves a Koa app on a free loopback port, with the same request helper the platform has. */
export async function serve(app: Koa): Promise<{ api: Platform['api']; close(): Promise<void> }> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    async api(method, path, { key, body, raw, headers = {} } = {}) {
      const all: Record<string, string> = { ...headers };
      if (key) all.authorization = `Bearer ${key}`;
      if (raw !== undefined || body !== undefined) all['content-type'] ??= 'application/json';
      const res = await fetch(baseUrl + path, {
        method,
        headers: all,
        body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      });
      const text = await res.text();
      const parsed: unknown = /json/.test(res.headers.get('content-type') ?? '') ? JSON.parse(text) : text;
      return { status: res.status, headers: res.headers, body: parsed };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export const userSlot = (user: TestUser) => ({ user: user.username });

/** A single review stage held by the given users. */
export const oneStage = (users: TestUser[], rule: Record<string, unknown> = { type: 'all' }) => ({
  routing: [{ name: 'Review', rule, assignees: users.map(userSlot) }],
});

/**
 * A fresh draft submitted with the routing, once its first stage accepts decisions. Shortened review deadlines need
 * a submitter with document control (or the lab director); the author submits otherwise.
 */
export async function underReview(p: Platform, author: TestUser, routing: Record<string, unknown>, content?: string, submitter = author) {
  const draft = await createDraft(p, author, content);
  const { workflowId } = await submit(p, submitter, draft.number, draft.version, routing);
  await waitFor(async () => {
    const v = await getVersion(p, author.apiKey, draft.number, draft.version);
    return v.process?.stages[0]?.status === 'active';
  }, `${draft.number} stage 1 open`);
  return { ...draft, workflowId: workflowId as string, path: versionPath(draft.number, draft.version) };
}
