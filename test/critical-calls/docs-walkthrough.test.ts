import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { startPlatform, type Platform } from '../helpers/platform';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database';
import { docBlock, walkthroughFolder, type WalkthroughFolder } from '../helpers/walkthrough';

/**
 * docs/results.md's critical-value walk-through, run as written by bash and curl against the real API and worker,
 * from a folder laid out like a clone under `npm start` (.data/dev-users.json naming the development users it uses).
 */
describe("docs/results.md's critical-value walk-through", function () {
  this.timeout(180_000);
  let p: Platform;
  let folder: WalkthroughFolder;
  // A database of its own: the requisition names its ordering provider by the development username, the
  // walk-through judges the value against TSH's seeded range (another file may add a newer version in the shared
  // database), and it lists every notified call.
  let scratch: ScratchDatabase;

  before(async () => {
    scratch = await createScratchDatabase('critical_doc');
    // The Temporal server is the suite's: accessions (and so run IDs) must not repeat another file's.
    await scratch.db.raw("select setval('sample_accession_seq', ?)", [400_000 + randomInt(200_000)]);
    // The settings `npm start` runs with (CRITICAL_CALL_MAX_ATTEMPTS 3, CRITICAL_CALL_DEADLINE 30m).
    p = await startPlatform({ db: scratch.db });
    folder = await walkthroughFolder({
      name: 'critical-calls',
      db: scratch.db,
      usernames: 'as-named',
      people: [
        ['tom.tech', ['lab_technician']],
        ['dana.director', ['lab_director']],
        ['carl.clinician', ['clinician']],
      ],
    });
  });
  after(async () => {
    await p?.stop();
    await scratch?.drop();
    await folder?.remove();
  });

  it('runs verbatim: a critical TSH called, a failed attempt, a wrong read-back, the right one, notified', async () => {
    const script = await docBlock('docs/results.md', '### Walk-through with curl: a critical value called and read back');
    const stdout = await folder.run(script, p.baseUrl, 150_000);
    const accession = /"workflowId":"critical-call:(ACC-\d+):TSH"/.exec(stdout)?.[1];
    assert.ok(accession, stdout);
    const call = `critical-call:${accession}:TSH`;

    // The entry is flagged against the seeded range's critical limit, and its call opens, calling the provider.
    assert.match(stdout, /^\{"state":"resulted","value":62,"flag":"critical_high"\}$/m);
    const opened = stdout.split('\n').find((l) => l.startsWith(`{"workflowId":"${call}"`));
    assert.ok(opened, stdout);
    const view = JSON.parse(opened);
    assert.equal(view.state, 'calling');
    assert.equal(view.orderingProvider.username, 'carl.clinician');
    assert.equal(view.maxAttempts, 3);
    assert.deepEqual(view.result, { value: 62, unit: 'mIU/L', flag: 'critical_high' });
    assert.deepEqual(view.attemptLog, []);

    // Each attempt as recorded, and the call's state after it.
    const recorded = (seq: number, outcome: string, reported: string, readBack: string | null, matches: boolean | null, duplicate: boolean) =>
      JSON.stringify({ seq, outcome, reportedOutcome: reported, readBack, readBackMatches: matches, duplicate });
    const state = (s: string, attempts: number, failed: number) => JSON.stringify({ workflowId: call, state: s, attempts, failedAttempts: failed });
    const lines = stdout.split('\n');
    const after = (line: string) => lines[lines.indexOf(line) + 1];
    const first = recorded(1, 'UNABLE_TO_REACH', 'UNABLE_TO_REACH', null, null, false);
    const mismatch = recorded(2, 'REACHED_NO_READBACK', 'CONFIRMED', '26', false, false);
    const confirmed = recorded(3, 'CONFIRMED', 'CONFIRMED', '62 mIU/L', true, false);
    const again = recorded(3, 'CONFIRMED', 'CONFIRMED', '62 mIU/L', true, true);
    for (const line of [first, mismatch, confirmed, again]) assert.ok(lines.includes(line), `${line} in\n${stdout}`);
    assert.equal(after(first), state('calling', 1, 1));
    assert.equal(after(mismatch), state('calling', 2, 2), 'a wrong read-back is a failed attempt');
    assert.equal(after(confirmed), state('notified', 3, 2));
    assert.equal(after(again), state('notified', 3, 2), 'the same request ID again records nothing');
    assert.ok(lines.indexOf(first) < lines.indexOf(mismatch) && lines.indexOf(mismatch) < lines.indexOf(confirmed));
    assert.match(stdout, /^409 urn:labflow:problem:critical-call-confirmed$/m);

    // The call as recorded, and the list of notified calls.
    assert.match(
      stdout,
      /^notified\n1 ordering_provider: UNABLE_TO_REACH → UNABLE_TO_REACH\n2 ordering_provider: CONFIRMED → REACHED_NO_READBACK, read back 26 \(does not match\)\n3 ordering_provider: CONFIRMED → CONFIRMED, read back 62 mIU\/L \(matches\)$/m,
    );
    const list = JSON.parse(lines.find((l) => l.startsWith('{"items":'))!);
    assert.deepEqual(
      list.items.map((c: { workflowId: string; state: string; attempts: number }) => [c.workflowId, c.state, c.attempts]),
      [[call, 'notified', 3]],
    );

    // The sample's trail (step 8) holds the analysis's and the call's events in chain order.
    const analysis = `analysis:${accession}:TSH`;
    const onTrail = lines.filter((l) => l.startsWith(`${analysis} `) || l.startsWith(`${call} `));
    assert.deepEqual(
      onTrail.filter((l) => l.startsWith(`${call} `)),
      [
        `${call} critical_call.opened`,
        `${call} critical_call.attempt_logged`,
        `${call} critical_call.attempt_logged`,
        `${call} critical_call.attempt_logged`,
        `${call} critical_call.notified`,
      ],
      stdout,
    );
    assert.deepEqual(onTrail.slice(0, 3), [`${analysis} analysis.opened`, `${analysis} analysis.resulted`, `${call} critical_call.opened`], stdout);
    assert.equal(onTrail.length, 7, stdout);

    // The audit trail the doc names, under the call's workflow ID: outcomes and matches, never the value.
    const trail = await scratch.db('audit_events').where({ entity_type: 'critical_call', entity_id: call }).orderBy('seq').select('action', 'details');
    assert.deepEqual(
      trail.map((e) => [e.action, e.details.outcome ?? null, e.details.reportedOutcome ?? null, e.details.readBackMatches ?? null]),
      [
        ['critical_call.opened', null, null, null],
        ['critical_call.attempt_logged', 'UNABLE_TO_REACH', 'UNABLE_TO_REACH', null],
        ['critical_call.attempt_logged', 'REACHED_NO_READBACK', 'CONFIRMED', false],
        ['critical_call.attempt_logged', 'CONFIRMED', 'CONFIRMED', true],
        ['critical_call.notified', null, null, null],
      ],
    );
    for (const e of trail) {
      assert.ok(!('readBack' in e.details) && !('value' in e.details) && !/mIU|"26"|:62[,}]/.test(JSON.stringify(e.details)), JSON.stringify(e.details));
    }
  });
});
