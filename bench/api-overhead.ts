/**
 * What the HTTP API costs on top of talking to Temporal directly, for the things it does with a document
 * approval run: start it (POST .../submit vs client.workflow.start), update it (POST .../extend vs
 * handle.executeUpdate(extendDueUpdate)), read it (GET .../versions/:v vs handle.query(documentStateQuery)) and
 * sign it (POST .../decisions with the password vs handle.executeUpdate(decideUpdate) with a grant written directly).
 * The signed decision is also weighed against itself without its action grant: the grant's own work (write it,
 * then check and consume it in a transaction, as the recording step does) is measured in the same run and the
 * ratio decision ÷ (decision − grant work) printed, the cost the grant adds to a signature.
 * The hardening (rate limits shared through PostgreSQL, security headers, CORS) is weighed on an authenticated read:
 * GET .../versions/:v through the API as configured against the same API without it, same run, same worker, the
 * order alternating; its ratio (target ≤ 1.05) is printed beside the others. The limits are raised so that no
 * request is refused: every request still pays for its counting.
 * Both paths hit the same dev server, the same worker and the same Client; samples come in pairs, API then raw in
 * even pairs and raw then API in odd ones, so machine noise and the order land on both alike. Prints a table, then one JSON line. BENCH_SAMPLES (default 200) and
 * BENCH_WARMUP (default 20) set the number of measured and discarded samples per op and path.
 */
import { performance } from 'node:perf_hooks';
import type { WorkflowHandle } from '@temporalio/client';
import { approvalInput, startApprovalRun } from '../api/temporal/document-approval';
import { decideUpdate, documentStateQuery, extendDueUpdate, type RoutingStage } from '../common/document-approval';
import { grantedArgs } from '../common/grants';
import { workflowIds } from '../common/ids';
import { consumeGrant, issueGrant } from '../db/grants';
import type { Actor, Role } from '../common/roles';
import { addVersion, createDocument, findVersion } from '../db/documents';
import { createUser, toActor } from '../db/identity';
import type { documentApprovalWorkflow } from '../workflows';
import { benchRun, UNTRIPPED_LIMITS } from './lib/bench-run';
import { startBenchPlatform, type BenchPlatform } from './lib/bench-platform';
import { percentile } from './lib/stats';

const bench = benchRun('api-overhead');
const SIGNING_PASSWORD = 'bench-signing-password';
const { say } = bench;
const positiveInt = (name: string, fallback: number) => bench.intSetting(name, fallback);

const SAMPLES = positiveInt('BENCH_SAMPLES', 200);
const WARMUP = positiveInt('BENCH_WARMUP', 20);
const TARGET = 1.25;
const SIGN_SAMPLES = positiveInt('BENCH_SIGN_SAMPLES', 60);
const GRANT_TARGET = 1.15;
const HARDENING_TARGET = 1.05;
const OPS = ['start', 'update', 'query', 'sign'] as const;
type Op = (typeof OPS)[number];
type Path = 'api' | 'raw';

interface User {
  actor: Actor;
  apiKey: string;
}
interface Draft {
  number: string;
  version: number;
}
type Handle = WorkflowHandle<typeof documentApprovalWorkflow>;

async function main(): Promise<void> {
  const p = await startBenchPlatform(say, { settings: UNTRIPPED_LIMITS });
  let results;
  try {
    results = await measure(p);
  } finally {
    say('stopping the API, the worker and the dev server; dropping the database');
    await p.stop();
  }
  report(results);
}

interface Measured {
  ops: Record<Op, Record<Path, number[]>>;
  /** Writing a signing grant, then checking and consuming it in a transaction: the grant's share of a decision. */
  grantWork: number[];
  /** The authenticated read through the API with its hardening on and off. */
  hardening: Record<'on' | 'off', number[]>;
}

async function measure(p: BenchPlatform): Promise<Measured> {
  const { db, client, config, baseUrl } = p;
  const user = async (name: string, roles: Role[]): Promise<User> => {
    const { user: row, apiKey } = await createUser(db, {
      username: `bench.${name}`,
      printedName: `Bench ${name}`,
      email: `${name}@bench.test`,
      roles,
      password: SIGNING_PASSWORD,
    });
    return { actor: toActor(row), apiKey };
  };
  const author = await user('author', ['author']);
  const reviewer = await user('reviewer', ['reviewer']);
  const control = await user('control', ['document_control']);

  const api = async (method: 'GET' | 'POST', path: string, key: string, expect: number, body?: unknown, base = baseUrl) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const parsed = (await res.json()) as Record<string, unknown>;
    if (res.status !== expect) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(parsed)}`);
    return parsed;
  };
  const versionPath = (d: Draft) => `/documents/${d.number}/versions/${d.version}`;
  const draft = async (i: number): Promise<Draft> => {
    const doc = await createDocument(db, author.actor, { title: `Bench SOP ${i}`, docType: 'form' });
    const row = await addVersion(db, author.actor, doc.id, doc.number, `Bench SOP ${i}: calibrate the pipettes monthly.`);
    return { number: doc.number, version: row.version };
  };
  const submitBody = { routing: [{ name: 'Review', rule: { type: 'any' }, assignees: [{ user: reviewer.actor.username }] }] };

  /** What POST .../submit hands to client.workflow.start for the same draft, built the same way. */
  const rawStart = async (d: Draft) => {
    const row = (await findVersion(db, d.number, d.version))!;
    const routing: RoutingStage[] = [
      {
        name: 'Review',
        rule: { type: 'any' },
        due: config.documentDefaults.stageDue,
        assignees: [{ kind: 'user', userId: reviewer.actor.userId, username: reviewer.actor.username }],
      },
    ];
    const input = approvalInput(row, routing, {
      reminderBefore: config.documentDefaults.reminderBefore,
      periodicReview: config.documentDefaults.periodicReview,
      submittedBy: author.actor.userId,
    });
    // Without the grant the API writes for a submission, the run would refuse to open its first stage.
    const submissionGrant = await issueGrant(db, {
      userId: author.actor.userId,
      workflowId: workflowIds.documentApproval(d.number, d.version),
      action: 'document.submit',
      args: grantedArgs.submit(input),
      ttlMs: 3_600_000,
    });
    return () => startApprovalRun(client, config.taskQueue, { ...input, submissionGrant });
  };
  /** A run submitted through the API whose review stage has opened (decisions and extensions are accepted). */
  const reviewRun = async (i: number): Promise<{ draft: Draft; handle: Handle }> => {
    const d = await draft(i);
    const { workflowId } = (await api('POST', `${versionPath(d)}/submit`, author.apiKey, 202, submitBody)) as { workflowId: string };
    const handle: Handle = client.workflow.getHandle(workflowId);
    for (let tries = 0; (await handle.query(documentStateQuery)).stages[0].status !== 'active'; tries++) {
      if (tries > 300) throw new Error(`${workflowId} did not open its review stage`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return { draft: d, handle };
  };

  const rounds = WARMUP + SAMPLES;
  say(`creating ${2 * rounds} drafts and 3 runs in review (${WARMUP} warm-up + ${SAMPLES} samples per op and path)`);
  const apiDrafts: Draft[] = [];
  const rawStarts: (() => Promise<Handle>)[] = [];
  for (let i = 0; i < rounds; i++) {
    apiDrafts.push(await draft(2 * i));
    rawStarts.push(await rawStart(await draft(2 * i + 1)));
  }
  const signRounds = WARMUP + SIGN_SAMPLES;
  say(`submitting ${2 * signRounds} runs to review for the signed decisions`);
  const toSign: { draft: Draft; handle: Handle; contentHash: string }[] = [];
  for (let i = 0; i < 2 * signRounds; i++) {
    const run = await reviewRun(2 * rounds + 3 + i);
    toSign.push({ ...run, contentHash: (await findVersion(db, run.draft.number, run.draft.version))!.content_hash });
  }
  const signBody = (contentHash: string) => ({
    decision: 'approve',
    signature: { password: SIGNING_PASSWORD, meaning: 'approval', contentHash },
  });
  const apiExtended = await reviewRun(2 * rounds);
  const rawExtended = await reviewRun(2 * rounds + 1);
  const queried = await reviewRun(2 * rounds + 2);

  // Each extension moves the due date a minute later than the one before; both runs get the same sequence.
  const dueBase = Date.now() + 30 * 24 * 3600_000;
  const extension = (i: number) => ({ dueAt: new Date(dueBase + i * 60_000).toISOString(), reason: `bench extension ${i}` });

  const ops: Record<Op, Record<Path, (i: number) => Promise<unknown>>> = {
    start: {
      api: (i) => api('POST', `${versionPath(apiDrafts[i])}/submit`, author.apiKey, 202, submitBody),
      raw: (i) => rawStarts[i](),
    },
    update: {
      api: (i) => api('POST', `${versionPath(apiExtended.draft)}/extend`, control.apiKey, 200, extension(i)),
      // A direct caller writes the action's grant as the API does: without one the run refuses the extension.
      raw: async (i) => {
        const grant = await issueGrant(db, {
          userId: control.actor.userId,
          workflowId: rawExtended.handle.workflowId,
          action: 'document.extend_due',
          args: grantedArgs.extendDue(extension(i)),
          ttlMs: 300_000,
        });
        return rawExtended.handle.executeUpdate(extendDueUpdate, { args: [{ actor: control.actor, grant, ...extension(i) }] });
      },
    },
    query: {
      api: () => api('GET', versionPath(queried.draft), author.apiKey, 200),
      raw: () => queried.handle.query(documentStateQuery),
    },
    sign: {
      api: (i) => {
        const { draft: d, contentHash } = toSign[2 * i];
        return api('POST', `${versionPath(d)}/decisions`, reviewer.apiKey, 200, signBody(contentHash));
      },
      // Directly, the caller skips the password check and writes the signing grant itself.
      raw: async (i) => {
        const { handle, contentHash } = toSign[2 * i + 1];
        const signature = { meaning: 'approval', contentHash, signedAt: new Date().toISOString() };
        const args = { decision: 'approve' as const, signature };
        const grant = await issueGrant(db, {
          userId: reviewer.actor.userId,
          workflowId: handle.workflowId,
          action: 'document.decide',
          args: grantedArgs.decide(args),
          signature: { meaning: signature.meaning, contentHash, passwordVerifiedAt: signature.signedAt },
          ttlMs: 300_000,
        });
        return handle.executeUpdate(decideUpdate, { args: [{ actor: reviewer.actor, grant, ...args }] });
      },
    },
  };

  /** The grant's own work in a signed decision, on a run of its own so no decision is touched. */
  const grantWork = async (i: number) => {
    const signature = { meaning: 'approval', contentHash: 'f'.repeat(64), signedAt: new Date().toISOString() };
    const args = grantedArgs.decide({ decision: 'approve', signature });
    const workflowId = `bench-grant-work-${i}`;
    const grantId = await issueGrant(db, {
      userId: reviewer.actor.userId,
      workflowId,
      action: 'document.decide',
      args,
      signature: { meaning: signature.meaning, contentHash: signature.contentHash, passwordVerifiedAt: signature.signedAt },
      ttlMs: 300_000,
    });
    const verdict = await db.transaction((trx) =>
      consumeGrant(trx, {
        grantId,
        workflowId,
        action: 'document.decide',
        userId: reviewer.actor.userId,
        args,
        signature: { meaning: signature.meaning, contentHash: signature.contentHash },
        consumedBy: `bench-${i}`,
      }),
    );
    if (!verdict.ok) throw new Error(`the bench's own grant was refused: ${verdict.reason}`);
  };

  const results = {} as Record<Op, Record<Path, number[]>>;
  const grantSamples: number[] = [];
  for (const op of OPS) {
    say(`measuring ${op}`);
    const samples: Record<Path, number[]> = { api: [], raw: [] };
    for (let i = 0; i < (op === 'sign' ? signRounds : rounds); i++) {
      bench.checkInterrupted();
      for (const path of i % 2 === 0 ? (['api', 'raw'] as const) : (['raw', 'api'] as const)) {
        const started = performance.now();
        await ops[op][path](i);
        const ms = performance.now() - started;
        if (i >= WARMUP) samples[path].push(ms);
      }
      if (op === 'sign') {
        const started = performance.now();
        await grantWork(i);
        if (i >= WARMUP) grantSamples.push(performance.now() - started);
      }
    }
    results[op] = samples;
  }
  say('measuring the authenticated read with the hardening on and off');
  const hardening: Record<'on' | 'off', number[]> = { on: [], off: [] };
  const bases = { on: baseUrl, off: p.bareBaseUrl };
  for (let i = 0; i < rounds; i++) {
    bench.checkInterrupted();
    for (const side of i % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
      const started = performance.now();
      await api('GET', versionPath(queried.draft), author.apiKey, 200, undefined, bases[side]);
      if (i >= WARMUP) hardening[side].push(performance.now() - started);
    }
  }
  return { ops: results, grantWork: grantSamples, hardening };
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

function report({ ops: results, grantWork, hardening }: Measured): void {
  const figures: Record<string, number> = {};
  const ratios: Record<Op, number> = { start: 0, update: 0, query: 0, sign: 0 };
  const rows = OPS.map((op) => {
    const [apiP50, apiP99, rawP50, rawP99] = [
      percentile(results[op].api, 0.5),
      percentile(results[op].api, 0.99),
      percentile(results[op].raw, 0.5),
      percentile(results[op].raw, 0.99),
    ].map(round3);
    Object.assign(figures, {
      [`${op}_api_p50_ms`]: apiP50,
      [`${op}_api_p99_ms`]: apiP99,
      [`${op}_raw_p50_ms`]: rawP50,
      [`${op}_raw_p99_ms`]: rawP99,
    });
    ratios[op] = round3(apiP50 / rawP50);
    figures[`${op}_p50_ratio`] = ratios[op];
    return [op, apiP50, rawP50, ratios[op], apiP99, rawP99].map((v) => (typeof v === 'number' ? v.toFixed(2) : v));
  });
  const header = ['op', 'api p50 ms', 'raw p50 ms', 'p50 api/raw', 'api p99 ms', 'raw p99 ms'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  console.log(
    `\napi-overhead: ${SAMPLES} samples per op and path (${SIGN_SAMPLES} for sign) after ${WARMUP} warm-up, interleaved, the order alternating`,
  );
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  rows.forEach((r) => console.log(line(r)));
  const worst = Math.max(...OPS.map((op) => ratios[op]));
  console.log(`worst p50 ratio ${worst.toFixed(3)} (target ≤ ${TARGET})`);
  const grantP50 = percentile(grantWork, 0.5);
  const signP50 = percentile(results.sign.api, 0.5);
  const grantRatio = round3(signP50 / (signP50 - grantP50));
  Object.assign(figures, { grant_work_p50_ms: round3(grantP50), signed_decision_grant_ratio: grantRatio });
  console.log(
    `signed decision through the API ${signP50.toFixed(2)} ms p50, of which the action grant (write, check, consume) ` +
      `${grantP50.toFixed(2)} ms: with ÷ without the grant ${grantRatio.toFixed(3)} (target ≤ ${GRANT_TARGET})\n`,
  );
  const [onP50, offP50] = [percentile(hardening.on, 0.5), percentile(hardening.off, 0.5)];
  const hardeningRatio = round3(onP50 / offP50);
  Object.assign(figures, { read_hardened_p50_ms: round3(onP50), read_bare_p50_ms: round3(offP50), hardening_p50_ratio: hardeningRatio });
  console.log(
    `authenticated read with rate limits and security headers ${onP50.toFixed(2)} ms p50, without ${offP50.toFixed(2)} ms: ` +
      `${hardeningRatio.toFixed(3)} (target ≤ ${HARDENING_TARGET})\n`,
  );
  console.log(
    JSON.stringify({
      bench: 'api-overhead',
      figures,
      ratio: worst,
      target: TARGET,
      grantRatio,
      grantTarget: GRANT_TARGET,
      hardeningRatio,
      hardeningTarget: HARDENING_TARGET,
      better: 'lower',
    }),
  );
}

bench.run(main);
