import { readFile, writeFile } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import { Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { isEncrypted, keyIdOf } from '../platform/payload-codec';

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

/**
 * The run's history with its encrypted payloads decrypted by the client's codecs: a saved fixture then replays on
 * any installation, whatever its keys, and shows what the run recorded.
 */
export async function fetchFixture(client: Client, workflowId: string, runId?: string): Promise<ReplayFixture> {
  const handle = client.workflow.getHandle(workflowId, runId);
  const history = await handle.fetchHistory();
  await decodePayloadsIn(history, client.options.loadedDataConverter.payloadCodecs);
  const described = await handle.describe();
  return { workflowId, runId: described.runId, history };
}

/** Readable by its owner only: a fixture holds the run's payloads in clear. */
export async function saveFixture(path: string, fixture: ReplayFixture): Promise<void> {
  const body = { workflowId: fixture.workflowId, runId: fixture.runId, history: JSON.parse(historyToJSON(fixture.history)) };
  await writeFile(path, `${JSON.stringify(body, null, 1)}\n`, { mode: 0o600 });
}

const isPayload = (value: unknown): value is Payload =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Payload).metadata === 'object' &&
  ArrayBuffer.isView((value as Payload).metadata?.encoding);

/** The key IDs of the encrypted payloads still in a history (none once it is decoded). */
export function encryptionKeyIdsIn(value: unknown, found = new Set<string>()): string[] {
  if (isPayload(value) && isEncrypted(value)) found.add(keyIdOf(value) ?? '');
  else if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value)) {
    for (const child of Object.values(value)) encryptionKeyIdsIn(child, found);
  }
  return [...found].sort();
}

/** Replaces, wherever it sits in a history, each encrypted payload by its decoded form (codecs in reverse order). */
export async function decodePayloadsIn(value: unknown, codecs: PayloadCodec[]): Promise<void> {
  if (codecs.length === 0 || typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return;
  const container = value as Record<string, unknown>;
  for (const [key, child] of Object.entries(container)) {
    if (isPayload(child) && isEncrypted(child)) {
      let decoded = [child];
      for (const codec of [...codecs].reverse()) decoded = await codec.decode(decoded);
      container[key] = decoded[0];
    } else {
      await decodePayloadsIn(child, codecs);
    }
  }
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
