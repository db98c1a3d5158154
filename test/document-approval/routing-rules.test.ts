import assert from 'node:assert/strict';
import type { StageState } from '../../common/document-approval';
import type { Actor } from '../../common/roles';
import { openSlotFor, requiredApprovals, resolveStage, routingProblems } from '../../common/routing-rules';

const actor = (userId: string, roles: Actor['roles'] = []): Actor => ({ userId, username: userId, printedName: userId, roles });
const decision = (userId: string, kind: 'approve' | 'reject' | 'request_changes') => ({
  kind,
  userId,
  username: userId,
  printedName: userId,
  at: '2026-01-01T00:00:00Z',
});
const stage = (rule: StageState['rule'], slots: StageState['slots']): StageState => ({
  name: 'S',
  rule,
  due: '72h',
  status: 'active',
  slots,
  reminded: false,
  escalated: false,
});
const user = (id: string) => ({ kind: 'user' as const, userId: id, username: id });

describe('routing rules', () => {
  it('needs every slot for "all", one for "any" and k for "k of n"', () => {
    assert.equal(requiredApprovals({ type: 'all' }, 3), 3);
    assert.equal(requiredApprovals({ type: 'any' }, 3), 1);
    assert.equal(requiredApprovals({ type: 'k_of_n', k: 2 }, 3), 2);
  });

  it('keeps a stage active until enough approvals, and lets one rejection or change request decide it', () => {
    const slots = () => [{ assignee: user('a') }, { assignee: user('b') }, { assignee: user('c') }];
    const s = stage({ type: 'k_of_n', k: 2 }, slots());
    s.slots[0].decision = decision('a', 'approve');
    assert.equal(resolveStage(s), 'active');
    s.slots[1].decision = decision('b', 'approve');
    assert.equal(resolveStage(s), 'approved');
    const r = stage({ type: 'all' }, slots());
    r.slots[0].decision = decision('a', 'approve');
    r.slots[2].decision = decision('c', 'reject');
    assert.equal(resolveStage(r), 'rejected');
    const c = stage({ type: 'any' }, slots());
    c.slots[1].decision = decision('b', 'request_changes');
    assert.equal(resolveStage(c), 'changes_requested');
  });

  it("fills a person's own named slot before a slot held by one of their roles", () => {
    const s = stage({ type: 'all' }, [{ assignee: { kind: 'role', role: 'reviewer' } }, { assignee: user('rita') }]);
    assert.equal(openSlotFor(s, actor('rita', ['reviewer']))?.assignee.kind, 'user');
    assert.equal(openSlotFor(s, actor('rick', ['reviewer']))?.assignee.kind, 'role');
    assert.equal(openSlotFor(s, actor('tom', ['lab_technician'])), undefined);
  });

  it('names each problem with a routing: no stages, no assignees, k above n, duplicates, the author reviewing', () => {
    assert.deepEqual(
      routingProblems([], 'author').map((p) => p.field),
      ['routing'],
    );
    const problems = routingProblems(
      [
        { name: 'Empty', rule: { type: 'all' }, assignees: [] },
        { name: 'Too few', rule: { type: 'k_of_n', k: 3 }, assignees: [user('a'), user('b')] },
        { name: 'Twice', rule: { type: 'all' }, assignees: [user('a'), user('a')] },
        { name: 'Self', rule: { type: 'all' }, assignees: [user('author')] },
      ],
      'author',
    );
    assert.deepEqual(
      problems.map((p) => p.field),
      ['routing[0].assignees', 'routing[1].rule.k', 'routing[2].assignees', 'routing[3].assignees'],
    );
    assert.match(problems[3].detail, /author/);
    assert.deepEqual(routingProblems([{ name: 'Fine', rule: { type: 'any' }, assignees: [user('a')] }], 'author'), []);
  });
});
