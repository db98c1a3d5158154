import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { loadFixture, replayFixtures, type ReplayFixture } from '../../workers/replay';
import { testEnv } from '../setup/env';

export type NamedFixture = ReplayFixture & { file: string };

/** Every fixture in test/replay/<folder>, in file order, with its file name for messages. */
export function loadFixtureFolder(folder: string): Promise<NamedFixture[]> {
  const dir = join(__dirname, '..', 'replay', folder);
  return Promise.all(
    readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map(async (f) => ({ ...(await loadFixture(join(dir, f))), file: f })),
  );
}

export const workflowTypeOf = (f: ReplayFixture) => f.history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;

/** Replays each fixture on its own (the runs of one continued-as-new chain share a workflow ID) against the bundle. */
export async function assertEveryFixtureReplays(fixtures: NamedFixture[]): Promise<void> {
  assert.ok(fixtures.length > 0, 'there are fixtures to replay');
  for (const f of fixtures) {
    const [verdict] = await replayFixtures({ workflowBundle: testEnv().workflowBundle, dataConverter: testEnv().dataConverter }, [f]);
    assert.equal(verdict.error, undefined, `${f.file}: ${verdict.error?.message}`);
  }
}

/** Replays a fixture against a deliberately changed workflow module and expects non-determinism to be caught. */
export async function assertChangeIsCaught(workflowsPath: string, fixture: NamedFixture): Promise<void> {
  const [verdict] = await replayFixtures({ workflowsPath, dataConverter: testEnv().dataConverter }, [fixture]);
  assert.ok(
    verdict.error instanceof DeterminismViolationError,
    `expected a determinism violation for ${fixture.file}, got ${verdict.error}`,
  );
}
