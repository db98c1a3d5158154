import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ErpNextAdapter } from '../../activities/erp/erpnext';
import { SharedRateBudget } from '../../activities/erp/rate-budget';
import { ErpNextStub } from '../helpers/erpnext-stub';
import { testEnv } from '../setup/env';

/**
 * How long after the first request each later one went, in order. The times are the database's clock, as the budget
 * granted them, so this asserts what the budget allowed, not how fast anything ran.
 */
function sinceFirst(granted: number[]): number[] {
  const sorted = [...granted].sort((a, b) => a - b);
  return sorted.map((t) => t - sorted[0]);
}

describe('the ERP request budget shared by every worker', () => {
  const db = () => testEnv().db;
  const site = () => `http://erp-${randomBytes(4).toString('hex')}.test`;

  it('grants two workers together no more than the rate of the site, one slot after the other', async () => {
    const url = site();
    // Two workers, each with its own budget object over the same database: 20 requests/s, no burst.
    const [a, b] = [new SharedRateBudget(db(), url, 20, 1), new SharedRateBudget(db(), url, 20, 1)];
    const other = new SharedRateBudget(db(), site(), 20, 1);
    const [slots, own] = await Promise.all([Promise.all(Array.from({ length: 6 }, () => [a.take(), b.take()]).flat()), other.take()]);
    assert.equal(slots.length, 12);
    // At 20/s, the (n+1)th request of the two workers together goes no sooner than n × 50 ms after the first.
    sinceFirst(slots).forEach((after, n) => assert.ok(after >= n * 50 - 0.01, `request ${n + 1} went ${after} ms after the first`));
    assert.ok(own < Math.max(...slots) - 400, 'a site of its own has a budget of its own');
  });

  it('lets a burst through at once, then spaces the rest', async () => {
    const budget = new SharedRateBudget(db(), site(), 10, 3);
    const after = sinceFirst(await Promise.all(Array.from({ length: 5 }, () => budget.take())));
    assert.ok(after[2] < 100, `three at once, not ${after.slice(0, 3).join(', ')} ms apart`);
    assert.ok(after[3] >= 99.99 && after[4] >= 199.99, `then one every 100 ms: ${after.join(', ')}`);
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
