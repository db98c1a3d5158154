import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { circuitGate, recordCircuitOutcome, type CircuitPolicy } from '../../db/llm-circuits';
import { testEnv } from '../setup/env';

const policy: CircuitPolicy = { failureThreshold: 3, coolDownMs: 60_000, trialMs: 10_000 };
const t0 = new Date('2026-12-01T10:00:00Z');
const at = (ms: number) => new Date(t0.getTime() + ms);

describe('the LLM provider circuit breaker', () => {
  // Each test has its own provider row, so tests never see each other's counts.
  let provider: string;
  beforeEach(() => {
    provider = `stub-${randomBytes(4).toString('hex')}`;
  });
  afterEach(() => testEnv().db('llm_provider_circuits').where({ provider }).delete());

  const fail = (kind = 'server_error', now = t0) => recordCircuitOutcome(testEnv().db, provider, 'failure', kind, policy, now);

  it('lets calls through while closed, below the threshold', async () => {
    assert.deepEqual(await circuitGate(testEnv().db, provider, policy, t0), { allowed: true, trial: false });
    await fail();
    await fail();
    assert.deepEqual(await circuitGate(testEnv().db, provider, policy, t0), { allowed: true, trial: false });
  });

  it('opens after the threshold and refuses calls during the cool-down', async () => {
    await fail();
    await fail();
    const opened = await fail('timeout');
    assert.equal(opened.state, 'open');
    assert.deepEqual(opened.openUntil, at(60_000));
    const gate = await circuitGate(testEnv().db, provider, policy, at(59_000));
    assert.deepEqual(gate, { allowed: false, openUntil: at(60_000) });
  });

  it('does not count refusals, truncation or failed validation', async () => {
    for (let i = 0; i < 5; i += 1) {
      for (const kind of ['refusal', 'truncated', 'prompt_truncated', 'validation_failed']) await fail(kind);
    }
    assert.deepEqual(await circuitGate(testEnv().db, provider, policy, t0), { allowed: true, trial: false });
  });

  it('resets the count on a success', async () => {
    await fail();
    await fail();
    const closed = await recordCircuitOutcome(testEnv().db, provider, 'success', null, policy, t0);
    assert.deepEqual(closed, { state: 'closed', consecutiveFailures: 0, openUntil: null });
    await fail();
    assert.equal((await circuitGate(testEnv().db, provider, policy, t0)).allowed, true);
  });

  it('allows exactly one half-open trial among concurrent callers after the cool-down', async () => {
    for (let i = 0; i < 3; i += 1) await fail();
    const gates = await Promise.all(Array.from({ length: 12 }, () => circuitGate(testEnv().db, provider, policy, at(61_000))));
    assert.equal(gates.filter((g) => g.allowed).length, 1);
    assert.deepEqual(
      gates.find((g) => g.allowed),
      { allowed: true, trial: true },
    );
    for (const g of gates.filter((g) => !g.allowed)) assert.deepEqual(g, { allowed: false, openUntil: at(71_000) });
  });

  it('closes when the trial succeeds', async () => {
    for (let i = 0; i < 3; i += 1) await fail();
    assert.equal((await circuitGate(testEnv().db, provider, policy, at(61_000))).allowed, true);
    await recordCircuitOutcome(testEnv().db, provider, 'success', null, policy, at(62_000));
    const after = await Promise.all([1, 2, 3].map(() => circuitGate(testEnv().db, provider, policy, at(62_500))));
    assert.ok(after.every((g) => g.allowed && !g.trial));
  });

  it('reopens for a full cool-down when the trial fails', async () => {
    for (let i = 0; i < 3; i += 1) await fail();
    assert.equal((await circuitGate(testEnv().db, provider, policy, at(61_000))).allowed, true);
    const reopened = await fail('rate_limited', at(62_000));
    assert.equal(reopened.state, 'open');
    assert.deepEqual(reopened.openUntil, at(122_000));
    assert.equal((await circuitGate(testEnv().db, provider, policy, at(100_000))).allowed, false);
  });

  it('lets another trial start when the first one never reported back', async () => {
    for (let i = 0; i < 3; i += 1) await fail();
    assert.equal((await circuitGate(testEnv().db, provider, policy, at(61_000))).allowed, true);
    assert.equal((await circuitGate(testEnv().db, provider, policy, at(65_000))).allowed, false);
    assert.deepEqual(await circuitGate(testEnv().db, provider, policy, at(71_001)), { allowed: true, trial: true });
  });

  it('counts failures from concurrent workers without losing any', async () => {
    const big: CircuitPolicy = { ...policy, failureThreshold: 100 };
    await Promise.all(Array.from({ length: 20 }, () => recordCircuitOutcome(testEnv().db, provider, 'failure', 'server_error', big, t0)));
    const row = await testEnv().db('llm_provider_circuits').where({ provider }).first();
    assert.equal(row.consecutive_failures, 20);
    assert.equal(row.state, 'closed');
  });
});
