import assert from 'node:assert/strict';
import { DeterminismViolationError } from '@temporalio/workflow';
import * as workflows from '../../workflows';
import {
  bundleWithInterceptors,
  historyFolders,
  loadFixtureFolder,
  replayEach,
  workflowTypeOf,
  type NamedFixture,
} from '../helpers/replay-suite';
import { testEnv } from '../setup/env';
import { expectations } from './expectations';

/** Every workflow type the worker runs: what workflows/index.ts exports. */
const workflowTypes = Object.entries(workflows)
  .filter(([, value]) => typeof value === 'function')
  .map(([name]) => name)
  .sort();
const folders = historyFolders();

describe('replaying the histories captured from real runs (test/fixtures/histories/<process>/)', () => {
  const byFolder = new Map<string, NamedFixture[]>();
  const all = () => [...byFolder.values()].flat();
  before(async () => {
    for (const folder of folders) byFolder.set(folder, await loadFixtureFolder(folder));
  });

  it('holds at least one history of every workflow type the worker runs, in folders whose contents are described', () => {
    const recorded = new Set(all().map(workflowTypeOf));
    assert.deepEqual(
      workflowTypes.filter((type) => !recorded.has(type)),
      [],
      'workflow types without a replay fixture (capture one with test/<process>/capture-histories.ts)',
    );
    assert.deepEqual(
      folders.filter((folder) => !expectations[folder]),
      [],
      'fixture folders that test/replay/expectations.ts does not describe',
    );
  });

  for (const folder of folders) {
    const expected = expectations[folder];
    describe(folder, () => {
      const fixtures = () => byFolder.get(folder) ?? [];

      it(`has fixtures ${expected?.covers ?? ''}, each under its real workflow ID`, () => {
        assert.ok(expected, `test/replay/expectations.ts describes ${folder}`);
        assert.ok(fixtures().length >= expected.minFixtures, `found ${fixtures().length} fixtures`);
        for (const f of fixtures()) {
          assert.match(f.workflowId, expected.workflowId, f.file);
          assert.ok((f.history.events?.length ?? 0) >= expected.minEvents, `${f.file} has a real history`);
        }
        assert.deepEqual([...new Set(fixtures().map(workflowTypeOf))].sort(), expected.workflowTypes);
        expected.more?.(fixtures());
      });

      it('replays every fixture against the current workflow code without non-determinism', async () => {
        for (const verdict of await replayEach(testEnv().workflowBundle, fixtures())) {
          assert.equal(verdict.error, undefined, `${verdict.file}: ${verdict.error?.message}`);
        }
      });
    });
  }

  describe('a new timer before anything else, in every workflow', () => {
    let unguarded: { code: string };
    let patched: { code: string };
    before(async function () {
      this.timeout(180_000);
      [unguarded, patched] = await Promise.all([
        bundleWithInterceptors(require.resolve('./changes/timer-first-unguarded')),
        bundleWithInterceptors(require.resolve('./changes/timer-first-patched')),
      ]);
    });

    for (const type of workflowTypes) {
      it(`is caught when a history of ${type} replays, unless guarded by a patch`, async () => {
        const fixture = all().find((f) => workflowTypeOf(f) === type);
        assert.ok(fixture, `a ${type} fixture`);
        const [verdict] = await replayEach(unguarded, [fixture]);
        assert.ok(
          verdict.error instanceof DeterminismViolationError,
          `expected a determinism violation for ${fixture.file}, got ${verdict.error}`,
        );
      });
    }

    // One test per workflow type: replaying every fixture in one test outgrew the suite's time budget per test.
    for (const type of workflowTypes) {
      it(`is accepted behind patched() in ${type}, so every recorded run keeps replaying`, async () => {
        const fixtures = all().filter((f) => workflowTypeOf(f) === type);
        assert.ok(fixtures.length > 0, `${type} fixtures`);
        const verdicts = await replayEach(patched, fixtures);
        assert.equal(verdicts.length, fixtures.length);
        for (const verdict of verdicts) assert.equal(verdict.error, undefined, `${verdict.file}: ${verdict.error?.message}`);
      });
    }

    it('leaves no fixture out of the per-type replays above', () => {
      const covered = all().filter((f) => workflowTypes.includes(workflowTypeOf(f) ?? ''));
      assert.deepEqual(
        all().filter((f) => !covered.includes(f)).map((f) => f.file),
        [],
      );
    });
  });
});
