import { stubActivityWorker } from '../helpers/stub-worker';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Actor } from '../../common/roles';
import {
  reviewSummaryUpdate,
  summaryStateQuery,
  supersedeSummarySignal,
  type Summarizer,
  type SummaryInput,
  type SummaryState,
} from '../../common/soap-summary';
import type { soapSummaryWorkflow } from '../../workflows';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

const clinician: Actor = { userId: 'u1', username: 'doc', printedName: 'Dr Doc', roles: ['clinician'] };
const signature = (contentHash: string) => ({ meaning: 'approval', contentHash, signedAt: '2026-12-01T10:00:00Z' });
/** A grant ID's shape; the stub activities stand for the recording step that would consume it. */
const grant = randomBytes(32).toString('base64url');

/** Stub activities that record each call; each summarizer answers as scripted (a failure type, or a summary). */
function stubs(script: Partial<Record<Summarizer, string | 'answers'>>) {
  const calls: string[] = [];
  const ends: { stage: string; reason: string }[] = [];
  const summarizer = (provider: Summarizer) => async () => {
    calls.push(provider);
    const outcome = script[provider] ?? 'answers';
    if (outcome !== 'answers') throw ApplicationFailure.create({ type: outcome, message: `${provider}: ${outcome}`, nonRetryable: true });
    return { attemptId: `${provider}-attempt`, model: `${provider}-model`, latencyMs: 1, outputTokens: 10 };
  };
  const activities = {
    async openSummaryJob() {
      calls.push('open');
      return { notesCurrent: true, round: 1, noteCount: 2 };
    },
    summarizeWithAnthropic: summarizer('anthropic'),
    summarizeWithOpenai: summarizer('openai'),
    summarizeWithOllama: summarizer('ollama'),
    summarizeExtractive: summarizer('extractive'),
    async validateSummaryCandidate() {
      calls.push('validate');
      return { ok: true, issues: [] };
    },
    async storeSummary({ round }: { round: number }) {
      calls.push('store');
      return { summaryId: `S${round}`, contentHash: `h${round}` };
    },
    async projectSummaryJob({ stage }: { stage: string }) {
      calls.push(`project:${stage}`);
    },
    async recordSummaryReview({ decision }: { decision: string }) {
      calls.push(`review:${decision}`);
      return { reviewedAt: '2026-12-01T10:00:01Z', contentHash: 'h-edited' };
    },
    async endSummaryJob({ stage, reason }: { stage: string; reason: string }) {
      ends.push({ stage, reason });
    },
    async confirmSummarySupersession({ reason }: { reason: string }) {
      calls.push(`confirm-supersession:${reason}`);
    },
  };
  return { activities, calls, ends };
}

type SummaryRun = WorkflowHandle<typeof soapSummaryWorkflow>;

describe('the summary workflow on its own (stub activities)', () => {
  const run = async (script: Parameters<typeof stubs>[0], providers: Summarizer[], drive: (handle: SummaryRun) => Promise<void>) => {
    const taskQueue = `summary-wf-${randomBytes(4).toString('hex')}`;
    const stub = stubs(script);
    const worker = await stubActivityWorker(taskQueue, stub.activities);
    const input: SummaryInput = {
      patientId: 'P1',
      notesHash: 'n1',
      requestedBy: { userId: 'u1', username: 'doc' },
      providers,
      attempt: { timeout: '5s', maxAttempts: 1, maxTokens: 100, maxRetryAfter: '1s' },
      maxRounds: 2,
    };
    await worker.runUntil(async () => {
      const handle = await testEnv().client.workflow.start<typeof soapSummaryWorkflow>('soapSummaryWorkflow', {
        workflowId: `soap-summary:P1:${randomBytes(4).toString('hex')}`,
        taskQueue,
        args: [input],
      });
      await drive(handle);
    });
    return stub;
  };

  const ready = (handle: SummaryRun) =>
    waitFor(async () => {
      const state = await handle.query(summaryStateQuery);
      return state.stage === 'ready' ? state : null;
    }, 'the summary to await review');

  it('falls back past a failing provider, awaits review, and ends approved with the signed summary', async () => {
    const stub = await run({ anthropic: 'LlmRateLimited' }, ['anthropic', 'openai'], async (handle) => {
      const state = await ready(handle);
      assert.equal(state.provider, 'openai');
      assert.deepEqual(
        state.attempts.map((a) => `${a.provider}:${a.outcome}`),
        ['anthropic:LlmRateLimited', 'openai:succeeded'],
      );
      const approved = await handle.executeUpdate(reviewSummaryUpdate, {
        args: [{ actor: clinician, grant, decision: 'approve', summaryId: 'S1', signature: signature('h1') }],
      });
      assert.equal(approved.stage, 'approved');
      const result: SummaryState = await handle.result();
      assert.equal(result.reviews[0].decision, 'approve');
    });
    assert.deepEqual(stub.calls, ['open', 'anthropic', 'openai', 'validate', 'store', 'review:approve', 'project:approved']);
  });

  it('refuses a review signed over other content without recording it, then takes a rejection as a new round', async () => {
    const stub = await run({}, ['openai'], async (handle) => {
      await ready(handle);
      await assert.rejects(
        handle.executeUpdate(reviewSummaryUpdate, {
          args: [{ actor: clinician, grant, decision: 'approve', summaryId: 'S1', signature: signature('stale') }],
        }),
        (err: unknown) => err instanceof WorkflowUpdateFailedError && (err.cause as ApplicationFailure).type === 'StaleContentHash',
      );
      await handle.executeUpdate(reviewSummaryUpdate, {
        args: [{ actor: clinician, grant, decision: 'reject', summaryId: 'S1', commentId: 'C1' }],
      });
      const second = await ready(handle);
      assert.equal(second.round, 2);
      assert.equal(second.summaryId, 'S2');
      await handle.executeUpdate(reviewSummaryUpdate, {
        args: [{ actor: clinician, grant, decision: 'approve', summaryId: 'S2', signature: signature('h2') }],
      });
      assert.equal((await handle.result()).stage, 'approved');
    });
    assert.deepEqual(
      stub.calls.filter((c) => c.startsWith('review:')),
      ['review:reject', 'review:approve'],
      'the refused review never reached an activity',
    );
  });

  it('ends superseded when the notes change while the summary awaits review', async () => {
    const stub = await run({}, ['openai'], async (handle) => {
      await ready(handle);
      await handle.signal(supersedeSummarySignal, { reason: 'notes_changed' });
      const result: SummaryState = await handle.result();
      assert.equal(result.stage, 'superseded');
      assert.equal(result.endedBecause, 'notes_changed');
    });
    assert.deepEqual(stub.ends, [{ stage: 'superseded', reason: 'notes_changed' }]);
    assert.ok(stub.calls.includes('confirm-supersession:notes_changed'), 'the notice was checked against Postgres before it was believed');
  });

  it('goes on when Postgres does not bear out a supersession notice, and refuses a review without proof', async () => {
    const stub = stubs({});
    stub.activities.confirmSummarySupersession = async () => {
      stub.calls.push('confirm-supersession:refused');
      throw ApplicationFailure.create({ type: 'GrantRefused', message: 'not superseded', nonRetryable: true });
    };
    const taskQueue = `summary-wf-${randomBytes(4).toString('hex')}`;
    const worker = await stubActivityWorker(taskQueue, stub.activities);
    await worker.runUntil(async () => {
      const handle = await testEnv().client.workflow.start<typeof soapSummaryWorkflow>('soapSummaryWorkflow', {
        workflowId: `soap-summary:P1:${randomBytes(4).toString('hex')}`,
        taskQueue,
        args: [
          {
            patientId: 'P1',
            notesHash: 'n1',
            requestedBy: { userId: 'u1', username: 'doc' },
            providers: ['openai'],
            attempt: { timeout: '5s', maxAttempts: 1, maxTokens: 100, maxRetryAfter: '1s' },
            maxRounds: 1,
          },
        ],
      });
      await ready(handle);
      await handle.signal(supersedeSummarySignal, { reason: 'notes_changed' });
      await waitFor(async () => stub.calls.includes('confirm-supersession:refused') || null, 'the notice to be checked');
      for (const forged of [{ actor: null, grant }, { actor: clinician }, { actor: clinician, grant: 'trust-me' }]) {
        await assert.rejects(
          handle.executeUpdate(reviewSummaryUpdate, { args: [{ decision: 'approve', summaryId: 'S1', signature: signature('h1'), ...forged } as never] }),
          (err: unknown) => err instanceof WorkflowUpdateFailedError && (err.cause as ApplicationFailure).type === 'GrantRefused',
        );
      }
      assert.equal((await handle.query(summaryStateQuery)).stage, 'ready', 'the forged notice superseded nothing');
      await handle.executeUpdate(reviewSummaryUpdate, { args: [{ actor: clinician, grant, decision: 'approve', summaryId: 'S1', signature: signature('h1') }] });
      assert.equal((await handle.result()).stage, 'approved');
    });
    assert.deepEqual(stub.ends, []);
    assert.deepEqual(stub.calls.filter((c) => c.startsWith('review:')), ['review:approve']);
  });

  it('fails as AllProvidersFailed when every summarizer fails, after recording the ending', async () => {
    const stub = await run({ anthropic: 'LlmAuth', extractive: 'LlmInvalidResponse' }, ['anthropic', 'extractive'], async (handle) => {
      await assert.rejects(
        handle.result(),
        (err: unknown) => err instanceof WorkflowFailedError && (err.cause as ApplicationFailure).type === 'AllProvidersFailed',
      );
    });
    assert.deepEqual(stub.calls, ['open', 'anthropic', 'extractive']);
    assert.deepEqual(stub.ends, [{ stage: 'failed_all_providers', reason: 'every summarizer failed' }]);
  });
});
