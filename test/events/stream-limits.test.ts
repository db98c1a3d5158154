import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { EventSource } from 'eventsource';
import { decodeJwt } from 'jose';
import { oidcResolver } from '../../api/oidc';
import { validDomainEvent } from '../../common/domain-events';
import { createLogger } from '../../platform/logger';
import { assertProblem } from '../api/support';
import { LABFLOW_RESOURCE, startIdentityProvider, type IdentityProvider } from '../helpers/identity-provider';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { startApiProcess, subscribe, type ApiProcess, type Refusal } from './stream-support';

/** Access tokens from the test's provider last this long: long enough to open a stream, short enough to wait out. */
const TOKEN_TTL_SECONDS = 8;
const MAX_BUFFERED_BYTES = 64 * 1024;

/**
 * `count` document.effective events, each its own document (the number padded to the longest an ID may be, so that
 * the stream's bytes pile up quickly), written as the processes write them and committed `perTransaction` at a time.
 */
async function documentsEffective(tag: string, count: number, perTransaction = 500): Promise<string[]> {
  const numbers = Array.from({ length: count }, () => `${tag}-${randomUUID()}-`.padEnd(200, 'x'));
  for (let i = 0; i < count; i += perTransaction) {
    const rows = numbers.slice(i, i + perTransaction).map((number) => {
      const { version, data } = validDomainEvent({
        type: 'document.effective',
        entityType: 'document',
        entityId: number,
        data: { documentNumber: number, version: 1, supersedesVersion: null },
      });
      // seq 0: the insert trigger takes the commit-ordered sequence number, as for every writer (db/domain-events.ts).
      return { seq: 0, type: 'document.effective', version, entity_type: 'document', entity_id: number, data: JSON.stringify(data) };
    });
    await testEnv().appDb.transaction((trx) => trx('domain_events').insert(rows));
  }
  return numbers;
}

const problemOf = ({ status, headers, body }: Refusal) => ({ status, headers, body });

describe('live event stream: a client that falls behind, the capacity limits, an access token that expires', function () {
  this.timeout(240_000);
  let p: ApiProcess;
  let idp: IdentityProvider;
  let u: Record<'slow' | 'ann' | 'bob' | 'cat' | 'sso', TestUser>;

  before(async () => {
    idp = await startIdentityProvider({ accessTokenTtlSeconds: TOKEN_TTL_SECONDS });
    const sso = oidcResolver(
      testEnv().appDb,
      {
        issuer: idp.issuer,
        audiences: [LABFLOW_RESOURCE],
        clockToleranceSeconds: 0,
        usernameClaims: ['preferred_username'],
        usernameDomains: [],
        roleMap: {},
        jit: false,
        httpTimeoutMs: 5000,
      },
      { log: createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test') },
    );
    // Heartbeats (and the credential checks they make) far apart: what ends a stream here is not a heartbeat.
    p = await startApiProcess(
      `stream-limits-${randomUUID().slice(0, 8)}`,
      { heartbeatMs: 120_000, maxPerUser: 2, maxPerProcess: 3, maxBufferedBytes: MAX_BUFFERED_BYTES },
      0,
      [sso],
    );
    u = await makeUsers({ slow: ['lab_technician'], ann: ['author'], bob: ['reviewer'], cat: ['approver'], sso: ['lab_technician'] });
  });
  after(async () => {
    await p?.stop();
    await idp?.close();
  });

  it('cuts off a client that reads nothing while events pile up, saying why; reconnecting with its Last-Event-ID it receives every later event once, in order', async () => {
    let resume!: () => void;
    const stall = new Promise<void>((resolve) => (resume = resolve));
    const tag = `FB-${randomUUID().slice(0, 8)}`;
    const stream = subscribe(p.baseUrl, u.slow.apiKey, '?type=document.effective', { stallUntil: stall });
    const received = () => stream.events.filter((e) => String(e.data.entityId).startsWith(tag));
    const numbers: string[] = [];
    try {
      await waitFor(() => stream.opens() === 1 && p.streams.size() === 1, 'the stream open');
      // Events commit while the client reads nothing, until the server gives up on it: past what the sockets
      // buffer (a few MB) and STREAM_MAX_BUFFERED_BYTES. Bounded, so a server that never cuts fails the test.
      for (let round = 0; p.streams.size() > 0; round++) {
        assert.ok(round < 60, `the stream was not cut off after ${numbers.length} events`);
        numbers.push(...(await documentsEffective(tag, 500)));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // Committed after the cut: the client has these only if it resumes.
      numbers.push(...(await documentsEffective(tag, 20)));
      resume();

      await waitFor(() => received().length >= numbers.length, 'every event, over the first connection and the next', 120_000);
      assert.deepEqual(stream.ended, ['fell-behind']);
      assert.equal(stream.opens(), 2, 'the client reconnected once');
      assert.deepEqual(
        received().map((e) => e.data.entityId),
        numbers,
        'each event once, in commit order',
      );
      const ids = received().map((e) => Number(e.id));
      assert.ok(
        ids.every((id, i) => i === 0 || id > ids[i - 1]),
        'ids increase',
      );
    } finally {
      resume();
      stream.close();
    }
  });

  it('refuses a stream past the per-process limit with 503 and past the per-user limit with 429, each with Retry-After; a client that goes away frees its place', async () => {
    const open: ReturnType<typeof subscribe>[] = [];
    const connect = (user: TestUser) => {
      const s = subscribe(p.baseUrl, user.apiKey);
      open.push(s);
      return s;
    };
    try {
      const ann1 = connect(u.ann);
      const ann2 = connect(u.ann);
      // Ann at her limit holds no one else back.
      const bob = connect(u.bob);
      await waitFor(() => [ann1, ann2, bob].every((s) => s.opens() === 1), 'three streams open');

      // The process holds its three: Cat, with none open, is refused, and her client gives up (no retry storm).
      const cat = connect(u.cat);
      await waitFor(() => cat.source.readyState === EventSource.CLOSED, 'the refused client closed');
      assert.deepEqual(cat.errors, [503]);
      assert.equal(cat.refusals.length, 1);
      assertProblem(problemOf(cat.refusals[0]), 503, 'stream-capacity');
      assert.equal(cat.refusals[0].body.limit, 3);
      assert.match(cat.refusals[0].headers.get('retry-after') ?? '', /^\d+$/);
      assert.equal(cat.opens(), 0);

      // Bob's client goes away: his place is free at once, and Cat, trying again, has it.
      bob.close();
      await waitFor(() => p.streams.size() === 2, "the server forgetting Bob's stream");
      const catAgain = connect(u.cat);
      await waitFor(() => catAgain.opens() === 1, "Cat's stream open in Bob's place");
      assert.deepEqual(catAgain.refusals, []);

      // With room in the process again, Ann's third stream is refused for her own limit.
      catAgain.close();
      await waitFor(() => p.streams.size() === 2, "the server forgetting Cat's stream");
      const ann3 = connect(u.ann);
      await waitFor(() => ann3.source.readyState === EventSource.CLOSED, "Ann's third client closed");
      assert.deepEqual(ann3.errors, [429]);
      assertProblem(problemOf(ann3.refusals[0]), 429, 'too-many-streams');
      assert.equal(ann3.refusals[0].body.limit, 2);
      assert.match(ann3.refusals[0].headers.get('retry-after') ?? '', /^\d+$/);

      // One of hers closes: she may open another.
      ann1.close();
      await waitFor(() => p.streams.size() === 1, "the server forgetting Ann's first stream");
      const ann4 = connect(u.ann);
      await waitFor(() => ann4.opens() === 1, "Ann's stream open in place of her first");
      assert.equal(ann2.opens(), 1, 'the streams that stayed were never cut');
    } finally {
      for (const s of open) s.close();
    }
  });

  it('ends a stream opened with a single sign-on access token when the token expires, saying why; the client reconnecting with it is refused', async () => {
    const token = await idp.token({ claims: { preferred_username: u.sso.username } });
    const expiresAt = (decodeJwt(token).exp ?? 0) * 1000;
    const tag = `EXP-${randomUUID().slice(0, 8)}`;
    const stream = subscribe(p.baseUrl, token, '?type=document.effective');
    try {
      await waitFor(() => stream.opens() === 1, 'the stream open with the access token');
      const [live] = await documentsEffective(tag, 1);
      await waitFor(() => stream.events.some((e) => e.data.entityId === live), 'an event while the token holds');
      assert.ok(Date.now() < expiresAt, 'the test reached this point before the token expired (raise TOKEN_TTL_SECONDS)');

      // Heartbeats are two minutes apart: the stream ends at the token's expiry, not at the next heartbeat.
      await waitFor(() => stream.ended.length > 0, 'the stream ended', TOKEN_TTL_SECONDS * 1000 + 30_000);
      assert.ok(Date.now() >= expiresAt, 'not before the token expired');
      assert.deepEqual(stream.ended, ['credentials-refused']);

      // EventSource reconnects by itself with the same token: 401 naming the expiry, and it stops there.
      await waitFor(() => stream.source.readyState === EventSource.CLOSED, 'the client gave up');
      assert.equal(stream.refusals.length, 1);
      assertProblem(problemOf(stream.refusals[0]), 401, 'invalid-token');
      assert.equal(stream.refusals[0].body.check, 'expired');
      assert.equal(stream.opens(), 1);
    } finally {
      stream.close();
    }
  });
});
