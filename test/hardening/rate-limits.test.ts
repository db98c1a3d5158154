import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { RateLimitSettings } from '../../api/hardening/rate-limits';
import { startPlatform, type ApiResponse, type Platform } from '../helpers/platform';
import { makeUsers } from '../helpers/users';
import { waitFor } from '../helpers/wait';

/** Low limits under a prefix of this test's own, so no other test's requests count against them. */
const limits = (overrides: Partial<RateLimitSettings> = {}): RateLimitSettings => ({
  windowMs: 60_000,
  points: 3,
  ipPoints: 1000,
  concurrent: 2,
  signingWindowMs: 60_000,
  signingPoints: 2,
  signingIpPoints: 2,
  keyPrefix: `rl-${randomBytes(4).toString('hex')}`,
  ...overrides,
});

function assertRateLimited(res: ApiResponse, type: string): void {
  assert.equal(res.status, 429, JSON.stringify(res.body));
  assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
  assert.equal(res.body.type, `urn:labflow:problem:${type}`);
  assert.ok(Number(res.headers.get('retry-after')) >= 1, 'Retry-After in seconds');
}

describe('rate limits', () => {
  const platforms: Platform[] = [];
  const start = async (rateLimits: RateLimitSettings, trustedProxies = 0) => {
    const p = await startPlatform({ withWorker: false, apiConfig: { rateLimits, trustedProxies } });
    platforms.push(p);
    return p;
  };
  afterEach(async () => {
    await Promise.all(platforms.splice(0).map((p) => p.stop()));
  });

  it('counts an API key across every API process sharing PostgreSQL: 429 problem+json with Retry-After and RateLimit-* once spent', async () => {
    const settings = limits();
    const [one, two] = [await start(settings), await start(settings)];
    const { author, other } = await makeUsers({ author: ['author'], other: ['author'] });

    const first = await one.api('GET', '/api/v1/documents', { key: author.apiKey });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('ratelimit-limit'), '3');
    assert.equal(first.headers.get('ratelimit-remaining'), '2');
    assert.ok(Number(first.headers.get('ratelimit-reset')) <= 60);
    assert.match(first.headers.get('ratelimit-policy') ?? '', /3;w=60/);
    assert.equal((await two.api('GET', '/api/v1/documents', { key: author.apiKey })).headers.get('ratelimit-remaining'), '1');
    assert.equal((await one.api('GET', '/api/v1/documents', { key: author.apiKey })).status, 200);

    const refused = await two.api('GET', '/api/v1/documents', { key: author.apiKey });
    assertRateLimited(refused, 'rate-limited');
    assert.equal(refused.headers.get('ratelimit-remaining'), '0');
    assert.equal(refused.body.scope, 'key');
    assert.match(refused.body.detail, /3 requests per 60 s per API key/);
    assertRateLimited(await one.api('GET', '/api/v1/documents', { key: author.apiKey }), 'rate-limited');

    // Another key from the same address has its own budget; health checks are never limited.
    assert.equal((await one.api('GET', '/api/v1/documents', { key: other.apiKey })).status, 200);
    assert.equal((await one.api('GET', '/healthz')).status, 200);
  });

  it('goes on without waiting far from the limit, yet counts every request and refuses exactly at it', async () => {
    const settings = limits({ points: 20 });
    const [one, two] = [await start(settings), await start(settings)];
    const { author } = await makeUsers({ author: ['author'] });
    for (let i = 1; i <= 20; i++) {
      const res = await one.api('GET', '/api/v1/documents', { key: author.apiKey });
      assert.equal(res.status, 200, `request ${i}: ${JSON.stringify(res.body)}`);
    }
    // Near the limit each request waits for PostgreSQL's count: the 21st is refused here and on the other process.
    assertRateLimited(await one.api('GET', '/api/v1/documents', { key: author.apiKey }), 'rate-limited');
    assertRateLimited(await two.api('GET', '/api/v1/documents', { key: author.apiKey }), 'rate-limited');
  });

  it('counts a client IP whatever key it sends, and believes X-Forwarded-For only behind TRUSTED_PROXIES', async () => {
    const direct = await start(limits({ ipPoints: 2 }));
    const spoofed = { 'x-forwarded-for': '203.0.113.9' };
    assert.equal((await direct.api('GET', '/api/v1/documents', { headers: spoofed })).status, 401);
    assert.equal((await direct.api('GET', '/api/v1/documents', { headers: { 'x-forwarded-for': '203.0.113.10' } })).status, 401);
    // Without trusted proxies the header is the client's own claim: the socket's address is what is counted.
    const refused = await direct.api('GET', '/api/v1/documents', { headers: { 'x-forwarded-for': '203.0.113.11' } });
    assertRateLimited(refused, 'rate-limited');
    assert.equal(refused.body.scope, 'ip');

    const proxied = await start(limits({ ipPoints: 2 }), 1);
    for (const client of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) {
      assert.equal((await proxied.api('GET', '/api/v1/documents', { headers: { 'x-forwarded-for': client } })).status, 401);
    }
    // One proxy trusted: the address it appended counts, not what the client wrote before it.
    await proxied.api('GET', '/api/v1/documents', { headers: { 'x-forwarded-for': 'forged, 198.51.100.4' } });
    await proxied.api('GET', '/api/v1/documents', { headers: { 'x-forwarded-for': 'other, 198.51.100.4' } });
    const spent = await proxied.api('GET', '/api/v1/documents', { headers: { 'x-forwarded-for': 'forged-again, 198.51.100.4' } });
    assertRateLimited(spent, 'rate-limited');
  });

  it('caps the requests one key has in progress at once', async () => {
    const p = await start(limits({ points: 1000, concurrent: 2 }));
    const { author } = await makeUsers({ author: ['author'] });
    // Two requests whose bodies never finish arriving hold their places until they are ended.
    const url = new URL(`${p.baseUrl}/api/v1/documents`);
    const hanging = [0, 1].map(() => {
      const req = request(url, { method: 'POST', headers: { authorization: `Bearer ${author.apiKey}`, 'content-type': 'application/json' } });
      const answered = new Promise<number>((resolve, reject) => {
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
      });
      req.write('{"title": "Held');
      return { req, answered };
    });
    // Each holds its place once the API has counted it: a third is refused only when both are in progress.
    // Asked until then, however long a loaded machine takes to bring both in.
    const third = await waitFor(async () => {
      const res = await p.api('GET', '/api/v1/documents', { key: author.apiKey });
      return res.status === 429 ? res : null;
    }, 'both held requests to be counted, so that a third is refused', 60_000);
    assertRateLimited(third, 'too-many-concurrent-requests');
    for (const { req } of hanging) req.end(' open"}');
    const statuses = await Promise.all(hanging.map((h) => h.answered));
    assert.deepEqual(statuses, [400, 400]);
    assert.equal((await p.api('GET', '/api/v1/documents', { key: author.apiKey })).status, 200);
  });

  /** Spends a key's signing budget of two on guessed signatures (each answered 404); answers the third, refused. */
  const spendSigningBudgetOfTwo = async (p: Awaited<ReturnType<typeof start>>, key: string) => {
    const decide = () =>
      p.api('POST', '/api/v1/documents/DOC-9999/versions/1/decisions', {
        key,
        body: { decision: 'approve', signature: { password: 'guess', meaning: 'approval', contentHash: 'a'.repeat(64) } },
      });
    assert.equal((await decide()).status, 404);
    assert.equal((await decide()).status, 404);
    const refused = await decide();
    assertRateLimited(refused, 'rate-limited');
    return refused;
  };

  it('gives routes that check a password, and the codec sign-in, the stricter budget', async () => {
    const p = await start(limits({ points: 100, signingPoints: 2 }));
    const { reviewer, operator } = await makeUsers({ reviewer: ['reviewer'], operator: ['it_operator'] });
    const refused = await spendSigningBudgetOfTwo(p, reviewer.apiKey);
    assert.match(refused.body.detail, /password checks and sign-ins/);
    // A route without a password is not on that budget.
    assert.equal((await p.api('GET', '/api/v1/documents', { key: reviewer.apiKey })).status, 200);

    // The client IP's sign-in budget is spent too: another key from it is refused as well.
    assertRateLimited(await p.api('POST', '/codec/session', { key: operator.apiKey }), 'rate-limited');

    const fresh = await start(limits({ points: 100, signingPoints: 2 }));
    assert.equal((await fresh.api('POST', '/codec/session', { key: operator.apiKey })).status, 200);
    assert.equal((await fresh.api('POST', '/codec/session', { key: operator.apiKey })).status, 200);
    assertRateLimited(await fresh.api('POST', '/codec/session', { key: operator.apiKey }), 'rate-limited');
  });

  it("counts the client IP's password checks on a larger budget of its own: one key's spent budget does not stop another's", async () => {
    const p = await start(limits({ points: 100, signingPoints: 2, signingIpPoints: 4 }));
    const { reviewer, operator } = await makeUsers({ reviewer: ['reviewer'], operator: ['it_operator'] });
    const refused = await spendSigningBudgetOfTwo(p, reviewer.apiKey);
    assert.equal(refused.body.scope, 'signing-key');
    // The same IP, another key: the reviewer's three checks and this one fill the IP's budget of four.
    assert.equal((await p.api('POST', '/codec/session', { key: operator.apiKey })).status, 200);
    // The next is refused for the IP, while the operator's own budget of two still has room.
    const byIp = await p.api('POST', '/codec/session', { key: operator.apiKey });
    assertRateLimited(byIp, 'rate-limited');
    assert.equal(byIp.body.scope, 'signing-ip', JSON.stringify(byIp.body));
  });
});
