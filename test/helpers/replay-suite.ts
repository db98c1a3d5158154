import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { dataConverterFor, FAILURE_CONVERTER_PATH, WORKFLOW_INTERCEPTOR_MODULES } from '../../platform/data-converter';
import type { Client } from '@temporalio/client';
import { fetchFixture, loadFixture, replayFixtures, saveFixture, type ReplayFixture, type ReplayVerdict } from '../../workers/replay';

/** Replay fixtures live in one folder per process, each history under the workflow ID it really ran with. */
export const HISTORIES_ROOT = join(__dirname, '..', 'fixtures', 'histories');

export const historiesDir = (process: string) => join(HISTORIES_ROOT, process);

export type NamedFixture = ReplayFixture & { file: string };

/** Saves a run's history as a fixture of a process's folder (payloads decoded) and checks it carries none of `leaks`. */
export async function saveCheckedFixture(client: Client, folder: string, name: string, workflowId: string, leaks: string[]): Promise<void> {
  const dir = historiesDir(folder);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  await saveFixture(file, await fetchFixture(client, workflowId));
  const text = readFileSync(file, 'utf8');
  for (const leak of leaks) assert.ok(!text.includes(leak), `${name} carries ${leak}`);
}

/** The process folders under test/fixtures/histories/, found by listing rather than by name. */
export function historyFolders(): string[] {
  return readdirSync(HISTORIES_ROOT, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

/** Every fixture in one process folder, in file order, with its file name for messages. */
export function loadFixtureFolder(process: string): Promise<NamedFixture[]> {
  const dir = historiesDir(process);
  return Promise.all(
    readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map(async (f) => ({ ...(await loadFixture(join(dir, f))), file: `${process}/${f}` })),
  );
}

export const workflowTypeOf = (f: ReplayFixture) => f.history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;

const ignore = () => undefined;
const quiet = { log: ignore, trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore };

/** The current workflows (workflows/index.ts) bundled with extra workflow interceptor modules, e.g. a deliberate change. */
export function bundleWithInterceptors(...interceptorModules: string[]): Promise<{ code: string }> {
  return bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES, ...interceptorModules],
    failureConverterPath: FAILURE_CONVERTER_PATH,
    logger: quiet,
  });
}

/**
 * Fixtures are stored decoded (clear), so they replay with a converter that accepts clear payloads: a replay takes
 * no inbound action, it re-runs what the run once accepted.
 */
const fixtureConverter = dataConverterFor(null);

/**
 * Replays each fixture against a bundle, one history at a time: the runs of one continued-as-new chain share a
 * workflow ID, and one verdict must be told from the other.
 */
export async function replayEach(
  workflowBundle: { code: string },
  fixtures: NamedFixture[],
): Promise<(ReplayVerdict & { file: string })[]> {
  const verdicts = [];
  for (const f of fixtures) {
    const [verdict] = await replayFixtures({ workflowBundle, dataConverter: fixtureConverter }, [f]);
    verdicts.push({ ...verdict, file: f.file });
  }
  return verdicts;
}
