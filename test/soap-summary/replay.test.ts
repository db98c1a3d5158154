import assert from 'node:assert/strict';
import type { SummaryState } from '../../common/soap-summary';
import { encryptionKeyIdsIn } from '../../workers/replay';
import {
  assertChangeIsCaught,
  assertEveryFixtureReplays,
  loadFixtureFolder,
  workflowTypeOf,
  type NamedFixture,
} from '../helpers/replay-suite';

/** Every payload's data in a history, as text. */
function payloadTexts(value: unknown, found: string[] = []): string[] {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return found;
  const v = value as { metadata?: unknown; data?: unknown };
  if (typeof v.metadata === 'object' && ArrayBuffer.isView(v.data)) {
    found.push(Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength).toString('utf8'));
  }
  for (const child of Object.values(value)) payloadTexts(child, found);
  return found;
}

/** How the run ended: the stage it returned, or 'failed'. */
function endingOf(f: NamedFixture): string {
  const last = f.history.events?.at(-1);
  if (last?.workflowExecutionFailedEventAttributes) return 'failed';
  const result = last?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
  assert.ok(result, `${f.file} ends with a result`);
  return (JSON.parse(payloadTexts(result)[0]) as SummaryState).stage;
}

describe('replaying histories captured from real SOAP-summary runs', () => {
  let fixtures: NamedFixture[];
  before(async () => {
    fixtures = await loadFixtureFolder('soap-summary');
  });

  it('has fixtures for each way a summary run ends, under their real workflow IDs', () => {
    assert.ok(fixtures.length >= 6, `found ${fixtures.length} fixtures`);
    for (const f of fixtures) {
      assert.match(f.workflowId, /^soap-summary:[0-9a-f-]{36}:[0-9a-f]{32}$/);
      assert.equal(workflowTypeOf(f), 'soapSummaryWorkflow');
      assert.ok((f.history.events?.length ?? 0) > 15, `${f.file} has a real history`);
    }
    const endings = new Set(fixtures.map(endingOf));
    for (const ending of ['approved', 'edited', 'superseded', 'failed']) assert.ok(endings.has(ending), `a run that ended ${ending}`);
    assert.ok(
      fixtures.some((f) => f.history.events?.some((e) => e.activityTaskCancelRequestedEventAttributes)),
      'a run superseded while a provider call was in flight',
    );
  });

  it('stores payloads decoded, so they replay under any key set, and they carry no clinical text', () => {
    for (const f of fixtures) {
      assert.deepEqual(encryptionKeyIdsIn(f.history), [], `${f.file} holds encrypted payloads`);
      const text = payloadTexts(f.history).join('\n').toLowerCase();
      assert.ok(text.includes(f.workflowId.toLowerCase()), `${f.file}: its payloads are readable`);
      for (const term of ['lisinopril', 'penicillin', 'aspirin', 'angina', 'hypertension', 'elm street']) {
        assert.ok(!text.includes(term), `${f.file} carries "${term}"`);
      }
    }
  });

  it('replays every fixture against the current workflow code without non-determinism', () => assertEveryFixtureReplays(fixtures));

  it('catches a change to the order of commands that is not guarded by a patch', () =>
    assertChangeIsCaught(require.resolve('./nondeterministic/unguarded'), fixtures[0]));
});
