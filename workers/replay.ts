import { readFile, writeFile } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import { Worker, type ReplayWorkerOptions } from '@temporalio/worker';

export type History = temporal.api.history.v1.IHistory;

/** A saved history with the workflow ID it ran under; plain history JSON (as the Web UI or CLI export it) loads too. */
export interface ReplayFixture {
  workflowId: string;
  runId?: string;
  history: History;
}

export async function loadFixture(path: string, workflowId?: string): Promise<ReplayFixture> {
  const parsed = JSON.parse(await readFile(path, 'utf8'));
  if (parsed && typeof parsed === 'object' && 'history' in parsed && 'workflowId' in parsed) {
    return { workflowId: parsed.workflowId, runId: parsed.runId, history: historyFromJSON(parsed.history) };
  }
  return { workflowId: workflowId ?? 'replayed-from-file', history: historyFromJSON(parsed) };
}

export async function fetchFixture(client: Client, workflowId: string, runId?: string): Promise<ReplayFixture> {
  const handle = client.workflow.getHandle(workflowId, runId);
  const history = await handle.fetchHistory();
  const described = await handle.describe();
  return { workflowId, runId: described.runId, history };
}

export async function saveFixture(path: string, fixture: ReplayFixture): Promise<void> {
  const body = { workflowId: fixture.workflowId, runId: fixture.runId, history: JSON.parse(historyToJSON(fixture.history)) };
  await writeFile(path, `${JSON.stringify(body, null, 1)}\n`);
}

export interface ReplayVerdict {
  workflowId: string;
  events: number;
  error?: Error;
}

/** Replays histories against a workflow bundle (or the current source) and reports each one's verdict. */
export async function replayFixtures(options: ReplayWorkerOptions, fixtures: ReplayFixture[]): Promise<ReplayVerdict[]> {
  const verdicts: ReplayVerdict[] = [];
  const results = Worker.runReplayHistories(
    options,
    fixtures.map((f) => ({ workflowId: f.workflowId, history: f.history })),
  );
  for await (const result of results) {
    const fixture = fixtures.find((f) => f.workflowId === result.workflowId);
    verdicts.push({ workflowId: result.workflowId, events: fixture?.history.events?.length ?? 0, error: result.error });
  }
  return verdicts;
}
