import assert from 'node:assert/strict';
import { workflowIds } from '../../common/ids';
import { createDraft, getVersion, submit, versionPath } from '../helpers/documents';
import { startPlatform, type ApiResponse, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { createCapa, getCapa } from '../capa/support';
import { PATIENT, getSample, hoursAgo, register, tag } from '../sample-intake/support';
import { testEnv } from '../setup/env';
import { assertProblem, refused } from './support';

/** 2.7 million years, and one year past the ten-year bound. */
const ABSURD = ['999999999d', '4015d'];

/** Rows a refused registration or creation must not leave behind, besides the ones `refused` watches. */
async function processRows() {
  const db = testEnv().db;
  const count = async (table: string) => Number((await db(table).count({ n: '*' }).first())?.n ?? 0);
  return { samples: await count('samples'), capas: await count('capas') };
}

/** Refused with the status and slug, naming the field (if given), with nothing written and no run started. */
async function refusedNaming(
  request: () => Promise<ApiResponse>,
  status: number,
  slug: string,
  field?: string,
  notStarted: string[] = [],
): Promise<ApiResponse> {
  const before = await processRows();
  const res = await refused(request, { notStarted });
  assertProblem(res, status, slug, field);
  assert.deepEqual(await processRows(), before, 'no sample or CAPA recorded');
  return res;
}

describe('bounds on every duration and date, and who may shorten a process timer', () => {
  let p: Platform;
  let u: Record<'author' | 'control' | 'rita' | 'doc' | 'tech' | 'qa' | 'initiator' | 'ops', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      author: ['author'],
      control: ['document_control'],
      rita: ['reviewer'],
      doc: ['clinician'],
      tech: ['lab_technician'],
      qa: ['qa_manager'],
      initiator: ['clinician'],
      ops: ['it_operator'],
    });
  });
  after(() => p.stop());

  const sampleBody = (extra: Record<string, unknown> = {}) => ({
    sampleType: 'SERUM',
    tests: ['CMP'],
    patient: PATIENT,
    collectedAt: hoursAgo(1),
    barcode: `BC-${tag()}`,
    ...extra,
  });
  const post = (by: TestUser, path: string, body: unknown) => p.api('POST', path, { key: by.apiKey, body });
  const oneStage = (extra: Record<string, unknown> = {}) => ({ name: 'Review', assignees: [{ user: u.rita.username }], ...extra });

  describe('a duration beyond ten years is refused with 422 naming the field, wherever the API takes one', () => {
    for (const value of ABSURD) {
      it(`sample timers: ${value}`, async () => {
        const res = await refusedNaming(
          () => post(u.tech, '/api/v1/samples', sampleBody({ timers: { specimenHold: value } })),
          422,
          'out-of-bounds',
          'body.timers.specimenHold',
        );
        assert.match(res.body.detail, /at most 3650d \(10 years\)/);
        await refusedNaming(
          () => post(u.tech, '/api/v1/sample-batches', { samples: [sampleBody()], timers: { cancelRetention: value } }),
          422,
          'out-of-bounds',
          'body.timers.cancelRetention',
        );
      });

      it(`CAPA durations, reopening window and triage durations: ${value}`, async () => {
        const capa = { title: 'Bounded', description: 'Bounded durations' };
        await refusedNaming(
          () => post(u.qa, '/api/v1/capas', { ...capa, durations: { containment: value } }),
          422,
          'out-of-bounds',
          'body.durations.containment',
        );
        await refusedNaming(() => post(u.qa, '/api/v1/capas', { ...capa, reopenWindow: value }), 422, 'out-of-bounds', 'body.reopenWindow');
        const { number } = await createCapa(p, u.initiator);
        const triage = { decision: 'accept', severity: 4, occurrence: 3, owner: u.tech.username, durations: { investigation: value } };
        await refusedNaming(
          () => post(u.qa, `/api/v1/capas/${number}/triage`, triage),
          422,
          'out-of-bounds',
          'body.durations.investigation',
        );
        assert.equal((await getCapa(p, u.qa, number)).stage, 'triage');
      });

      it(`document review deadlines: ${value}`, async () => {
        const { number, version } = await createDraft(p, u.author);
        const path = `${versionPath(number, version)}/submit`;
        const notStarted = [workflowIds.documentApproval(number, version)];
        for (const [body, field] of [
          [{ routing: [oneStage({ due: value })] }, 'body.routing.0.due'],
          [{ routing: [oneStage()], reminderBefore: value }, 'body.reminderBefore'],
          [{ routing: [oneStage()], periodicReview: value }, 'body.periodicReview'],
        ] as const) {
          await refusedNaming(() => post(u.control, path, body), 422, 'out-of-bounds', field, notStarted);
        }
      });

      it(`a summary's wait: ${value}`, async () => {
        const path = `/api/v1/patients/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/summaries?wait=${value}`;
        await refusedNaming(() => post(u.doc, path, {}), 422, 'out-of-bounds', 'query.wait');
      });
    }

    it('answers 400 to a duration that is not one, as before (a malformed value is not an out-of-bounds one)', async () => {
      await refusedNaming(
        () => post(u.tech, '/api/v1/samples', sampleBody({ timers: { specimenHold: 'forever' } })),
        400,
        'validation',
        'body.timers.specimenHold',
      );
    });
  });

  describe('a date before 1900 or more than a century ahead is refused with 422 naming the field', () => {
    it('on a sample: collection time and date of birth', async () => {
      await refusedNaming(
        () => post(u.tech, '/api/v1/samples', sampleBody({ collectedAt: '1899-12-31T23:59:59Z' })),
        422,
        'out-of-bounds',
        'body.collectedAt',
      );
      await refusedNaming(
        () => post(u.tech, '/api/v1/samples', sampleBody({ patient: { ...PATIENT, dob: '1850-01-01' } })),
        422,
        'out-of-bounds',
        'body.patient.dob',
      );
    });

    it('on a document: effective date absurdly far ahead, and an extension back in 1800', async () => {
      const { number, version } = await createDraft(p, u.author);
      const path = `${versionPath(number, version)}/submit`;
      await refusedNaming(
        () => post(u.author, path, { routing: [oneStage()], effectiveDate: '2999-01-01T00:00:00Z' }),
        422,
        'out-of-bounds',
        'body.effectiveDate',
        [workflowIds.documentApproval(number, version)],
      );
      const { workflowId } = await submit(p, u.author, number, version, { routing: [oneStage()] });
      await waitFor(
        async () => (await getVersion(p, u.author.apiKey, number, version)).process?.stages[0].status === 'active',
        'stage active',
      );
      const res = await refused(
        () => post(u.control, `${versionPath(number, version)}/extend`, { dueAt: '1800-01-01T00:00:00Z', reason: 'x' }),
        {
          runs: [workflowId],
        },
      );
      assertProblem(res, 422, 'out-of-bounds', 'body.dueAt');
    });

    it('on a schedule backfill: before 1900, and a span over ten years', async () => {
      const path = '/api/v1/schedules/daily-digest/backfill';
      await refusedNaming(
        () => post(u.ops, path, { start: '1850-01-01T00:00:00Z', end: '1850-01-02T00:00:00Z', reason: 'x' }),
        422,
        'out-of-bounds',
        'body.start',
      );
      await refusedNaming(
        () => post(u.ops, path, { start: '1990-01-01T00:00:00Z', end: '2020-01-01T00:00:00Z', reason: 'x' }),
        422,
        'out-of-bounds',
        'body.end',
      );
    });
  });

  describe('a process timer is the configured value at most, and only some roles may shorten it', () => {
    it('sample intake: a lab technician shortens a hold; a clinician may not; nobody lengthens one', async () => {
      await refusedNaming(
        () => post(u.doc, '/api/v1/samples', sampleBody({ timers: { specimenHold: '1h' } })),
        403,
        'forbidden',
        undefined,
      );
      const longer = await refusedNaming(
        () => post(u.tech, '/api/v1/samples', sampleBody({ timers: { specimenHold: '8d' } })),
        422,
        'timer-out-of-bounds',
        'body.timers.specimenHold',
      );
      assert.match(longer.body.detail, /at most 7d/);
      await refusedNaming(
        () => post(u.tech, '/api/v1/samples', sampleBody({ timers: { statTurnaround: '500ms' } })),
        422,
        'timer-out-of-bounds',
        'body.timers.statTurnaround',
      );
      await refusedNaming(
        () => post(u.doc, '/api/v1/sample-batches', { samples: [sampleBody()], timers: { orderHold: '1h' } }),
        403,
        'forbidden',
        undefined,
      );
      // Shortened by the lab: the sample waits one hour for its specimen, not seven days.
      const { accession } = await register(p, u.tech, { submitter: u.doc.username, tests: ['CMP'], timers: { specimenHold: '1h' } });
      const sample = await getSample(p, u.tech, accession);
      assert.equal(sample.state, 'expected');
      assert.ok(Date.parse(sample.dueAt) < Date.now() + 2 * 3_600_000, `due within the hour: ${sample.dueAt}`);
      // A clinician stating the configured value changes nothing and needs no role.
      await register(p, u.doc, { timers: { specimenHold: '7d' } });
    });

    it('CAPA: a QA manager shortens its durations within the risk level, anyone else gets 403', async () => {
      const capa = { title: 'Timers', description: 'Who may shorten them' };
      await refusedNaming(
        () => post(u.initiator, '/api/v1/capas', { ...capa, durations: { containment: '1h' } }),
        403,
        'forbidden',
        undefined,
      );
      await refusedNaming(() => post(u.initiator, '/api/v1/capas', { ...capa, maxExtensions: 1 }), 403, 'forbidden', undefined);
      // Before triage the level is unknown: the strictest level's containment (2d) is the ceiling.
      await refusedNaming(
        () => post(u.qa, '/api/v1/capas', { ...capa, durations: { containment: '3d' } }),
        422,
        'timer-out-of-bounds',
        'body.durations.containment',
      );
      await refusedNaming(
        () => post(u.qa, '/api/v1/capas', { ...capa, maxExtensions: 5 }),
        422,
        'timer-out-of-bounds',
        'body.maxExtensions',
      );
      await refusedNaming(
        () => post(u.qa, '/api/v1/capas', { ...capa, reopenWindow: '400d' }),
        422,
        'timer-out-of-bounds',
        'body.reopenWindow',
      );

      const shortened = await createCapa(p, u.qa, { ...capa, durations: { containment: '1d' }, maxExtensions: 1 });
      const state = (await getCapa(p, u.qa, shortened.number)).process;
      assert.equal(state.durations.containment, '1d');
      assert.equal(state.maxExtensions, 1);

      // At triage the level is known: low risk (1 × 1) allows a 14-day containment, not 15.
      const { number } = await createCapa(p, u.initiator);
      const triage = { decision: 'accept', severity: 1, occurrence: 1, owner: u.tech.username };
      await refusedNaming(
        () => post(u.qa, `/api/v1/capas/${number}/triage`, { ...triage, durations: { containment: '15d' } }),
        422,
        'timer-out-of-bounds',
        'body.durations.containment',
      );
      const accepted = await post(u.qa, `/api/v1/capas/${number}/triage`, {
        ...triage,
        durations: { containment: '14d', reminderBefore: '1h' },
      });
      assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
      assert.equal((await getCapa(p, u.qa, number)).process.durations.containment, '14d');
    });

    it('document approval: document control shortens review deadlines, an author may not, nobody lengthens them', async () => {
      const { number, version } = await createDraft(p, u.author);
      const path = `${versionPath(number, version)}/submit`;
      const notStarted = [workflowIds.documentApproval(number, version)];
      await refusedNaming(() => post(u.author, path, { routing: [oneStage({ due: '1h' })] }), 403, 'forbidden', undefined, notStarted);
      await refusedNaming(
        () => post(u.author, path, { routing: [oneStage()], periodicReview: '30d' }),
        403,
        'forbidden',
        undefined,
        notStarted,
      );
      await refusedNaming(
        () => post(u.control, path, { routing: [oneStage({ due: '73h' })] }),
        422,
        'timer-out-of-bounds',
        'body.routing.0.due',
        notStarted,
      );
      await refusedNaming(
        () => post(u.control, path, { routing: [oneStage()], periodicReview: '366d' }),
        422,
        'timer-out-of-bounds',
        'body.periodicReview',
        notStarted,
      );
      await submit(p, u.control, number, version, { routing: [oneStage({ due: '1h' })], reminderBefore: '10m' });
      const v = await waitFor(async () => {
        const got = await getVersion(p, u.author.apiKey, number, version);
        return got.process?.stages[0].status === 'active' ? got : null;
      }, 'stage active');
      assert.equal(v.process.stages[0].due, '1h');

      // An author stating the configured deadline (as the README's walk-through does) needs no role.
      const other = await createDraft(p, u.author);
      await submit(p, u.author, other.number, other.version, { routing: [oneStage({ due: '72h' })] });
    });
  });
});
