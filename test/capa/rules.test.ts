import assert from 'node:assert/strict';
import type { ApplicationFailure } from '@temporalio/common';
import { noticeText, taskTitle } from '../../activities/capa-wording';
import type { AssigneeRef } from '../../common/assignees';
import { contentHashOf } from '../../common/capa-hash';
import { RISK_DURATIONS, riskOf, type CapaAction, type CapaInput, type CapaState } from '../../common/capa';
import type { Actor } from '../../common/roles';
import { dedupeSources, initialState } from '../../workflows/capa/capa-case';
import { durationsFor, earliestDue, owedNow, reopenUntil, sleepFor, stageDeadline, wakeTimes } from '../../workflows/capa/deadlines';
import { planOf } from '../../workflows/capa/stages/plan';
import { QA, escalateTo, taskKey, wantedTasks } from '../../workflows/capa/tasks';
import {
  validateClose,
  validateEffectiveness,
  validateExtensionRequest,
  validatePlan,
  validateTriage,
} from '../../workflows/capa/validators';

const T0 = Date.parse('2026-03-01T08:00:00.000Z');
const HOUR = 3_600_000;
const at = (ms: number) => new Date(ms).toISOString();

const actor = (username: string, roles: Actor['roles']): Actor => ({ userId: `id-${username}`, username, printedName: username, roles });
/** A well-formed grant ID: validators check its shape; the recording step checks the grant itself. */
const GRANT = 'g'.repeat(43);
const qa = actor('quinn', ['qa_manager']);
const owner = actor('olga', ['lab_technician']);
const ownerRef: AssigneeRef = { kind: 'user', userId: owner.userId, username: owner.username };

const input: CapaInput = {
  number: 'CAPA-2026-0001',
  title: 'Haemolysed samples',
  description: 'Repeated haemolysis',
  sources: [],
  initiatedBy: { userId: 'id-ian', username: 'ian' },
};

function stateIn(stage: CapaState['stage'], changes: Partial<CapaState> = {}): CapaState {
  return { ...initialState(input, 'capa:CAPA-2026-0001'), stage, ...changes };
}

function action(id: string, changes: Partial<CapaAction> = {}): CapaAction {
  return {
    id,
    type: 'corrective',
    description: `do ${id}`,
    owner: ownerRef,
    dueAt: at(T0 + 48 * HOUR),
    state: 'open',
    extensions: 0,
    extensionRequest: null,
    extensionRequests: 0,
    completedBy: null,
    completedAt: null,
    evidence: null,
    reminded: false,
    escalated: false,
    ...changes,
  };
}

const withPlan = (stage: CapaState['stage'], actions: CapaAction[], changes: Partial<CapaState> = {}) =>
  stateIn(stage, {
    owner: ownerRef,
    plan: {
      actions,
      criteria: [{ id: 'C1', description: 'rate', measure: '< 2%' }],
      contentHash: 'h',
      submittedBy: owner.username,
      submittedAt: at(T0),
    },
    ...changes,
  });

/** Runs a validator and answers the failure type it refused with, or null when it let the Update through. */
function refusal(validate: () => void): string | null {
  try {
    validate();
    return null;
  } catch (err) {
    return (err as ApplicationFailure).type ?? 'untyped';
  }
}

describe('CAPA rules (pure, no server)', () => {
  describe('risk', () => {
    it('scores severity × occurrence: 15 and above is high, 8 to 14 medium, below 8 low', () => {
      assert.deepEqual(riskOf(1, 1), { severity: 1, occurrence: 1, score: 1, level: 'low' });
      assert.equal(riskOf(2, 3).level, 'low');
      assert.equal(riskOf(2, 4).level, 'medium');
      assert.equal(riskOf(3, 4).level, 'medium');
      assert.equal(riskOf(3, 5).level, 'high');
      assert.equal(riskOf(5, 5).score, 25);
    });
  });

  describe('durations and deadlines', () => {
    it('takes the risk level’s durations, then the CAPA’s overrides, then triage’s', () => {
      assert.deepEqual(durationsFor('high'), RISK_DURATIONS.high);
      const d = durationsFor('low', { containment: '1h', investigation: '2h' }, { investigation: '3h' });
      assert.equal(d.containment, '1h');
      assert.equal(d.investigation, '3h');
      assert.equal(d.effectivenessWait, RISK_DURATIONS.low.effectivenessWait);
    });

    it('sets a stage deadline from now and counts its reminder as sent when the lead is longer than the stage', () => {
      assert.deepEqual(stageDeadline('containment', '7d', '2d', T0), {
        stage: 'containment',
        dueAt: at(T0 + 7 * 24 * HOUR),
        reminded: false,
        escalated: false,
      });
      assert.equal(stageDeadline('investigation', '1h', '2h', T0).reminded, true);
      assert.equal(stageDeadline('investigation', '2h', '2h', T0).reminded, true, 'a reminder due now is not sent');
    });

    it('keeps a closed CAPA reopenable for its window, a year unless the CAPA says otherwise', () => {
      assert.equal(reopenUntil(T0, undefined), at(T0 + 365 * 24 * HOUR));
      assert.equal(reopenUntil(T0, '2s'), at(T0 + 2000));
    });

    it('owes a reminder in the lead time and an escalation once overdue, each once', () => {
      const deadline = { stage: 'containment' as const, dueAt: at(T0 + 10 * HOUR), reminded: false, escalated: false };
      const s = stateIn('containment', { owner: ownerRef, deadline, durations: { ...RISK_DURATIONS.medium, reminderBefore: '2h' } });
      assert.equal(owedNow(s, T0), null);
      assert.equal(owedNow(s, T0 + 8 * HOUR)?.kind, 'reminder');
      assert.equal(owedNow(s, T0 + 10 * HOUR)?.kind, 'escalation', 'an overdue stage escalates even when no reminder went out');
      deadline.reminded = true;
      assert.equal(owedNow(s, T0 + 9 * HOUR), null);
      deadline.escalated = true;
      assert.equal(owedNow(s, T0 + 20 * HOUR), null);
    });

    it('wakes for each open action’s reminder and due date, and sleeps at least a millisecond', () => {
      const s = withPlan('implementation', [action('A1', { dueAt: at(T0 + 5 * HOUR) }), action('A2', { dueAt: at(T0 + 3 * HOUR) })], {
        durations: { ...RISK_DURATIONS.medium, reminderBefore: '1h' },
      });
      assert.deepEqual(
        wakeTimes(s).sort((a, b) => a - b),
        [T0 + 2 * HOUR, T0 + 3 * HOUR, T0 + 4 * HOUR, T0 + 5 * HOUR],
      );
      assert.equal(sleepFor(s, T0), 2 * HOUR);
      assert.equal(sleepFor(s, T0 + 10 * HOUR), 1);
      const done = withPlan('implementation', [action('A1', { state: 'done' })]);
      assert.equal(sleepFor(done, T0), null, 'nothing open: only a message wakes the run');
    });

    it('wakes at the end of the effectiveness wait and of the reopen window', () => {
      assert.deepEqual(wakeTimes(stateIn('effectiveness_wait', { effectivenessDueAt: at(T0 + HOUR) })), [T0 + HOUR]);
      assert.deepEqual(wakeTimes(stateIn('closed', { reopenUntil: at(T0 + 2 * HOUR) })), [T0 + 2 * HOUR]);
    });

    it('shows the earliest due date of the open tasks, or the end of the effectiveness wait', () => {
      const s = withPlan('implementation', [action('A1', { dueAt: at(T0 + 5 * HOUR) }), action('A2', { dueAt: at(T0 + 3 * HOUR) })]);
      assert.equal(earliestDue(s, wantedTasks(s)), at(T0 + 3 * HOUR));
      const waiting = stateIn('effectiveness_wait', { effectivenessDueAt: at(T0 + HOUR) });
      assert.equal(earliestDue(waiting, wantedTasks(waiting)), at(T0 + HOUR));
      assert.equal(earliestDue(stateIn('triage'), wantedTasks(stateIn('triage'))), null);
    });
  });

  describe('sources', () => {
    it('counts the same type and ID once, keeping the first', () => {
      const sample = { type: 'sample' as const, id: 'ACC-1' };
      assert.deepEqual(dedupeSources([sample, { type: 'complaint', id: 'ACC-1' }, { ...sample }]), [
        sample,
        { type: 'complaint', id: 'ACC-1' },
      ]);
      const s = initialState({ ...input, sources: [sample, sample] }, 'capa:x');
      assert.equal(s.sources.length, 1);
    });
  });

  describe('the tasks a state calls for', () => {
    it('asks QA to triage, the owner to contain and investigate, QA to approve the plan', () => {
      assert.deepEqual(wantedTasks(stateIn('triage')), [{ subject: { what: 'triage' }, assignee: QA, dueAt: null }]);
      const deadline = { stage: 'containment' as const, dueAt: at(T0), reminded: false, escalated: false };
      assert.deepEqual(wantedTasks(stateIn('containment', { owner: ownerRef, deadline })), [
        { subject: { what: 'containment' }, assignee: ownerRef, dueAt: at(T0) },
      ]);
      assert.equal(wantedTasks(stateIn('plan_approval'))[0].subject.what, 'plan_approval');
      assert.deepEqual(wantedTasks(stateIn('closed')), []);
      assert.deepEqual(wantedTasks(stateIn('effectiveness_wait')), []);
    });

    it('gives each open action its task, and QA one for each extension waiting', () => {
      const request = { dueAt: at(T0 + 99 * HOUR), reason: 'parts', by: owner.username, at: at(T0) };
      const s = withPlan('implementation', [
        action('A1', { state: 'done' }),
        action('A2', { extensionRequest: request, extensionRequests: 2 }),
      ]);
      const tasks = wantedTasks(s);
      assert.deepEqual(
        tasks.map((t) => taskKey('capa:CAPA-2026-0001', 1, t)),
        ['capa:CAPA-2026-0001:r1:action:A2:user:olga', 'capa:CAPA-2026-0001:r1:extension:A2:2:role:qa_manager'],
      );
    });

    it('asks QA to verify effectiveness, then, once a check of this round passed, to close', () => {
      const s = withPlan('effectiveness_review', [action('A1', { state: 'done' })]);
      assert.equal(wantedTasks(s)[0].subject.what, 'effectiveness');
      const record = { round: 1, verifier: 'v', passed: true, results: [], comment: '', at: at(T0) };
      assert.equal(wantedTasks({ ...s, effectiveness: [record] })[0].subject.what, 'closure');
      assert.equal(wantedTasks({ ...s, effectiveness: [{ ...record, round: 0 }] })[0].subject.what, 'effectiveness');
    });

    it('escalates to the QA manager who triaged, or to QA managers as a role when there is none', () => {
      assert.deepEqual(escalateTo(stateIn('containment')), QA);
      assert.deepEqual(escalateTo(stateIn('containment', { qaManager: { userId: qa.userId, username: qa.username } })), {
        kind: 'user',
        userId: qa.userId,
        username: qa.username,
      });
    });
  });

  describe('validators', () => {
    it('lets only a QA manager triage, only at triage, with scores from 1 to 5 and an owner', () => {
      const accept = { grant: GRANT, actor: qa, decision: 'accept' as const, severity: 3, occurrence: 3, owner: ownerRef };
      assert.equal(
        refusal(() => validateTriage(stateIn('triage'), accept)),
        null,
      );
      assert.equal(
        refusal(() => validateTriage(stateIn('containment'), accept)),
        'WrongStage',
      );
      assert.equal(
        refusal(() => validateTriage(stateIn('triage'), { ...accept, actor: owner })),
        'Forbidden',
      );
      assert.equal(
        refusal(() => validateTriage(stateIn('triage'), { ...accept, severity: 6 })),
        'InvalidInput',
      );
      assert.equal(
        refusal(() => validateTriage(stateIn('triage'), { ...accept, occurrence: 2.5 })),
        'InvalidInput',
      );
      assert.equal(
        refusal(() => validateTriage(stateIn('triage'), { ...accept, owner: undefined })),
        'InvalidInput',
      );
      const merge = { grant: GRANT, actor: qa, decision: 'merge' as const, reason: 'same', mergeInto: input.number };
      assert.equal(
        refusal(() => validateTriage(stateIn('triage'), merge)),
        'InvalidInput',
        'not into itself',
      );
      assert.equal(
        refusal(() => validateTriage(stateIn('triage'), { ...merge, mergeInto: 'CAPA-2026-0002' })),
        null,
      );
      assert.equal(
        refusal(() => validateTriage(stateIn('triage'), { grant: GRANT, actor: qa, decision: 'unfounded', reason: ' ' })),
        'InvalidInput',
      );
    });

    it('refuses a plan from anyone but the owner, before the root cause, or with a due date not in the future', () => {
      const investigation = { method: 'five_whys' as const, rootCause: 'x', findings: 'y', by: owner.username, at: at(T0) };
      const s = stateIn('investigation', { owner: ownerRef, investigation });
      const plan = {
        grant: GRANT,
        actor: owner,
        actions: [{ type: 'corrective' as const, description: 'fix', owner: ownerRef, dueAt: at(T0 + HOUR) }],
        criteria: [{ description: 'rate', measure: '< 2%' }],
      };
      assert.equal(
        refusal(() => validatePlan(s, plan, T0)),
        null,
      );
      assert.equal(
        refusal(() => validatePlan(s, plan, T0 + HOUR)),
        'InvalidInput',
      );
      assert.equal(
        refusal(() => validatePlan(s, { ...plan, actor: qa }, T0)),
        'NotAssignee',
      );
      assert.equal(
        refusal(() => validatePlan({ ...s, investigation: null }, plan, T0)),
        'WrongStage',
      );
      assert.equal(
        refusal(() => validatePlan(s, { ...plan, criteria: [] }, T0)),
        'InvalidInput',
      );
    });

    it('limits extensions and refuses a second request while one waits', () => {
      const request = { grant: GRANT, actor: owner, actionId: 'A1', dueAt: at(T0 + 96 * HOUR), reason: 'parts' };
      const s = withPlan('implementation', [action('A1')]);
      assert.equal(
        refusal(() => validateExtensionRequest(s, request)),
        null,
      );
      assert.equal(
        refusal(() => validateExtensionRequest(s, { ...request, dueAt: at(T0) })),
        'InvalidInput',
        'not later than the due date',
      );
      assert.equal(
        refusal(() => validateExtensionRequest(s, { ...request, actionId: 'A9' })),
        'NotFound',
      );
      const waiting = withPlan('implementation', [action('A1', { extensionRequest: { dueAt: at(T0), reason: 'r', by: 'o', at: at(T0) } })]);
      assert.equal(
        refusal(() => validateExtensionRequest(waiting, request)),
        'DuplicateDecision',
      );
      const spent = withPlan('implementation', [action('A1', { extensions: 2 })]);
      assert.equal(
        refusal(() => validateExtensionRequest(spent, request)),
        'ExtensionLimit',
      );
    });

    it('refuses a verifier who owns or completed an action, and results that miss a criterion', () => {
      const verifier = actor('vera', ['lab_director']);
      const results = [{ criterionId: 'C1', met: true, evidence: 'rate 1%' }];
      const s = withPlan('effectiveness_review', [action('A1', { state: 'done', completedBy: { userId: 'id-tom', username: 'tom' } })]);
      assert.equal(
        refusal(() => validateEffectiveness(s, { grant: GRANT, actor: verifier, results, comment: '' })),
        null,
      );
      assert.equal(
        refusal(() => validateEffectiveness(s, { grant: GRANT, actor: owner, results, comment: '' })),
        'Forbidden',
        'wrong role',
      );
      const tom = actor('tom', ['qa_manager']);
      assert.equal(
        refusal(() => validateEffectiveness(s, { grant: GRANT, actor: tom, results, comment: '' })),
        'Forbidden',
        'completed A1',
      );
      assert.equal(
        refusal(() => validateEffectiveness(s, { grant: GRANT, actor: verifier, results: [], comment: '' })),
        'InvalidInput',
      );
    });

    it('refuses closure while actions are open, then without a passing check, then on a stale hash', () => {
      const sign = (contentHash: string) => ({ meaning: 'responsibility', contentHash, signedAt: at(T0) });
      const close = { grant: GRANT, actor: qa, signature: sign('closure-hash') };
      assert.equal(
        refusal(() => validateClose(withPlan('implementation', [action('A1')]), close)),
        'ActionsOpen',
      );
      const review = withPlan('effectiveness_review', [action('A1', { state: 'done' })], { closureContentHash: 'closure-hash' });
      assert.equal(
        refusal(() => validateClose(review, close)),
        'EffectivenessMissing',
      );
      const passed = { ...review, effectiveness: [{ round: 1, verifier: 'v', passed: true, results: [], comment: '', at: at(T0) }] };
      assert.equal(
        refusal(() => validateClose(passed, close)),
        null,
      );
      assert.equal(
        refusal(() => validateClose(passed, { grant: GRANT, actor: qa, signature: sign('other') })),
        'StaleContentHash',
      );
      assert.equal(
        refusal(() => validateClose(passed, { ...close, supplierAction: 'suspend' })),
        'InvalidInput',
        'no supplier',
      );
      assert.equal(
        refusal(() => validateClose(passed, { ...close, actor: owner })),
        'Forbidden',
      );
    });
  });

  describe('the plan’s signed content', () => {
    it('numbers actions and criteria and hashes what the approver signs, the same whatever the key order', () => {
      const args = {
        grant: GRANT,
        actor: owner,
        actions: [{ type: 'corrective' as const, description: 'fix', owner: ownerRef, dueAt: '2026-03-02T08:00:00Z' }],
        criteria: [{ description: 'rate', measure: '< 2%' }],
      };
      const plan = planOf(input.number, 2, args);
      assert.deepEqual(
        plan.actions.map((a) => [a.id, a.dueAt]),
        [['A1', '2026-03-02T08:00:00.000Z']],
      );
      assert.equal(plan.criteria[0].id, 'C1');
      const expected = contentHashOf({
        criteria: plan.criteria,
        actions: [{ dueAt: '2026-03-02T08:00:00.000Z', owner: 'user:olga', description: 'fix', type: 'corrective', id: 'A1' }],
        round: 2,
        number: input.number,
      });
      assert.equal(plan.contentHash, expected);
      assert.notEqual(planOf(input.number, 3, args).contentHash, expected, 'a new round signs a new hash');
    });
  });

  describe('wording (the activity’s, from the run’s facts)', () => {
    const capa = { workflowId: 'capa:CAPA-2026-0001', number: 'CAPA-2026-0001', title: 'Haemolysed samples' };
    it('words notices and task titles with the CAPA’s number and title', () => {
      assert.deepEqual(noticeText(capa, { to: [QA], kind: 'capa.overdue', what: 'action A1', dueAt: at(T0), holder: 'user:olga' }), {
        title: 'Overdue: CAPA-2026-0001 action A1',
        body: `action A1 of CAPA-2026-0001 "Haemolysed samples" was due at ${at(T0)} (user:olga).`,
      });
      assert.equal(
        noticeText(capa, { to: [QA], kind: 'capa.closed', outcome: 'unfounded', atTriage: true }).title,
        'CAPA CAPA-2026-0001 closed at triage',
      );
      assert.equal(
        taskTitle(capa, { what: 'action', actionId: 'A2', actionType: 'preventive' }),
        'Action A2 (preventive) of CAPA-2026-0001 "Haemolysed samples"',
      );
    });
  });
});
