import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ErpNextAdapter } from '../../activities/erp/erpnext';
import { SharedRateBudget } from '../../activities/erp/rate-budget';
import { ErpNextStub } from '../helpers/erpnext-stub';
import { testEnv } from '../setup/env';

/** The gaps between consecutive slots granted, in grant order. */
function gaps(slots: number[]): number[] {
  const sorted = [...slots].sort((a, b) => a - b);
  return sorted.slice(1).map((t, i) => t - sorted[i]);
}

/** Equal to within float rounding of the database's epoch arithmetic (or, read as a Date, its millisecond). */
const close = (actual: number, expected: number, what: string, within = 0.01) =>
  assert.ok(Math.abs(actual - expected) < within, `${what}: ${actual}`);

describe('the ERP request budget shared by every worker', () => {
  const db = () => testEnv().db;
  const site = () => `http://erp-${randomBytes(4).toString('hex')}.test`;

  // Reservations are what the budget grants, without waiting for the slots: a slow rate makes every later slot lie
  // ahead of the reservations, so the grants are the rule's, whatever the machine's load.
  it('grants two workers together one slot per interval of the site, one after the other', async () => {
    const url = site();
    // Two workers, each with its own budget object over the same database: one request per 10 s, no burst.
    const [a, b] = [new SharedRateBudget(db(), url, 0.1, 1), new SharedRateBudget(db(), url, 0.1, 1)];
    const granted = await Promise.all(Array.from({ length: 6 }, () => [a.reserve(), b.reserve()]).flat());
    assert.equal(granted.length, 12);
    assert.equal(granted.filter((g) => g.slot <= g.now).length, 1, 'only the first request may go at once');
    gaps(granted.map((g) => g.slot)).forEach((gap, n) => close(gap, 10_000, `slot ${n + 2} follows slot ${n + 1} by the interval`));

    const other = await new SharedRateBudget(db(), site(), 0.1, 1).reserve();
    assert.ok(other.slot <= other.now, 'a site of its own has a budget of its own: its first request goes at once');
  });

  it('lets a burst through at once, then grants one slot per interval', async () => {
    const budget = new SharedRateBudget(db(), site(), 0.1, 3);
    const granted: { slot: number; now: number }[] = [];
    for (let i = 0; i < 5; i++) granted.push(await budget.reserve());
    assert.deepEqual(
      granted.map((g) => g.slot <= g.now),
      [true, true, true, false, false],
      'three go at once, the rest wait',
    );
    close(granted[3].slot - granted[2].slot, 10_000, 'the fourth slot is one interval after the third');
    close(granted[4].slot - granted[3].slot, 10_000, 'the fifth slot is one interval after the fourth');
  });

  it('takes a slot only once it has come', async () => {
    const url = site();
    const budget = new SharedRateBudget(db(), url, 10, 1);
    const first = await budget.take();
    const second = await budget.take();
    // Read as a Date, the database's microseconds are cut to milliseconds.
    const { next_at: nextAt } = await db()('erp_rate_budgets').where({ site: url }).first();
    assert.ok(second > first, 'the second request went after the first');
    close(new Date(nextAt).getTime() - second, 100, 'the next slot is one interval after the second request', 1);
  });

  it("holds every worker back until a 429's Retry-After has passed", async () => {
    const url = site();
    const [a, b] = [new SharedRateBudget(db(), url, 100), new SharedRateBudget(db(), url, 100)];
    await a.take();
    await a.pause(1200);
    const { paused_until: pausedUntil } = await db()('erp_rate_budgets').where({ site: url }).first();
    const slot = await b.take();
    assert.ok(slot >= new Date(pausedUntil).getTime(), 'the other worker waited for the pause');
  });

  it('is what an adapter uses: a 429 it is answered pauses the site for every worker that shares the budget', async () => {
    const stub = new ErpNextStub();
    await stub.start();
    try {
      stub.put('Item', { name: 'ITM-1', item_name: 'Item 1', stock_uom: 'Nos' });
      stub.fault(
        { doctype: 'Item', list: true },
        { kind: 'status', status: 429, excType: 'TooManyRequestsError', message: 'slow down', retryAfter: 1 },
      );
      const budget = (rate: number) => new SharedRateBudget(db(), stub.url, rate);
      const adapter = new ErpNextAdapter({
        url: stub.url,
        apiKey: stub.apiKey,
        apiSecret: stub.apiSecret,
        timeoutMs: 5000,
        ratePerSecond: 1000,
        budget: budget(1000),
      });
      const page = await adapter.fetchChanges('items', null, 10);
      assert.equal(page.records.length, 1, 'answered after waiting the 429 out');
      assert.equal(stub.count({ doctype: 'Item', status: 429 }), 1);
      const { paused_until: pausedUntil } = await db()('erp_rate_budgets').where({ site: stub.url }).first();
      assert.ok(new Date(pausedUntil).getTime() > 0, 'the pause is recorded for the site');
      const after = await budget(1000).take();
      assert.ok(after >= new Date(pausedUntil).getTime());
    } finally {
      await stub.stop();
    }
  });
});
