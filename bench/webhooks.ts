import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { signWebhook, webhookBody } from '../activities/webhook-delivery';
import { appendAudit } from '../db/audit';
import { toDomainEvent } from '../db/domain-events';
import { createUser } from '../db/identity';
import { webhookDeliveryWorkflowId } from '../common/webhook-delivery';
import { benchRun } from './lib/bench-run';
import { startBenchPlatform, type BenchPlatform } from './lib/bench-platform';
import { median, percentile } from './lib/stats';

/**
 * bench:webhooks — domain events delivered to a local receiver through the delivery workflow (a subscription, its
 * run in the worker process, woken by the worker's NOTIFY listener), against the same number of events POSTed
 * directly by a loop to the same receiver, signed the same way, in the same run. Each event is its own business
 * transaction (a verified backup, as the backup job writes it); the latency of a delivery is from that
 * transaction's commit to the receiver's 2xx. Live, the run can go no faster than the bench commits events one
 * transaction at a time, so the throughput compared with the direct loop is a backlog's: the subscription turned
 * off while as many events again commit, then on, timed from enabling it to the last 2xx. BENCH_EVENTS events per
 * round, BENCH_ROUNDS rounds, medians reported.
 */
const { say, intSetting, checkInterrupted, run } = benchRun('webhooks');
const EVENTS = intSetting('BENCH_EVENTS', 300);
const ROUNDS = intSetting('BENCH_ROUNDS', 3);
const TARGET = 0.5;

const r1 = (x: number) => Math.round(x * 10) / 10;

interface Receiver {
  url: string;
  /** performance.now() of each 2xx answer, by webhook-id. */
  answeredAt: Map<string, number>;
  waitFor(count: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Where a round's time went, from the delivery run's history: activities (scheduled → started is the wait for a
 * worker slot, started → completed the activity itself: reads, POSTs, records), the gaps between one activity's
 * completion and the next one's scheduling (a workflow task, or the run waiting for a wake-up), and the time from the
 * first event's commit to the run's first wake-up signal after it.
 */
async function runBreakdown(p: BenchPlatform, subscriptionId: string, firstCommitWall: number) {
  const history = await p.client.workflow.getHandle(webhookDeliveryWorkflowId(subscriptionId)).fetchHistory();
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
  const scheduled = new Map<string, number>();
  const started = new Map<string, number>();
  let activities = 0;
  let queued = 0;
  let running = 0;
  let between = 0;
  let lastCompleted: number | null = null;
  let firstSignal: number | null = null;
  for (const e of history.events ?? []) {
    const at = ms(e.eventTime);
    if (e.workflowExecutionSignaledEventAttributes && firstSignal === null && at >= firstCommitWall) firstSignal = at;
    if (e.activityTaskScheduledEventAttributes) {
      scheduled.set(String(e.eventId), at);
      if (lastCompleted !== null && at >= firstCommitWall) between += at - lastCompleted;
    }
    const st = e.activityTaskStartedEventAttributes;
    if (st) started.set(String(st.scheduledEventId), at);
    const c = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
    if (c) {
      const s0 = scheduled.get(String(c.scheduledEventId));
      const s1 = started.get(String(c.scheduledEventId));
      if (s0 !== undefined && s1 !== undefined && s0 >= firstCommitWall) {
        activities++;
        queued += s1 - s0;
        running += at - s1;
      }
      lastCompleted = at;
    }
  }
  return { activities, queuedMs: queued, activityMs: running, betweenMs: between, wakeMs: firstSignal === null ? null : firstSignal - firstCommitWall };
}

async function startReceiver(): Promise<Receiver> {
  const answeredAt = new Map<string, number>();
  let waiting: { count: number; resolve: () => void } | null = null;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(204).end();
      answeredAt.set(String(req.headers['webhook-id']), performance.now());
      if (waiting && answeredAt.size >= waiting.count) waiting.resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`,
    answeredAt,
    waitFor: (count) =>
      answeredAt.size >= count
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`only ${answeredAt.size} of ${count} deliveries in 10 minutes`)), 600_000);
            waiting = {
              count,
              resolve: () => {
                clearTimeout(timer);
                resolve();
              },
            };
          }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

run(async () => {
  const p = await startBenchPlatform(say, { settings: { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' } });
  try {
    const { apiKey } = await createUser(p.db, {
      username: 'bench.admin',
      printedName: 'Bench Admin',
      email: 'bench.admin@lab.test',
      roles: ['admin'],
      password: `pw-${randomUUID()}`,
    });
    const rounds: { workflow: { perSecond: number; live: number; p50: number; p99: number }; direct: { perSecond: number } }[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      checkInterrupted();
      // Through labflow: a fresh subscription per round, so each round starts with an idle delivery run.
      const rx = await startReceiver();
      const created = await fetch(`${p.baseUrl}/api/v1/webhook-subscriptions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: rx.url, eventTypes: ['backup.verified'] }),
      });
      if (created.status !== 201) throw new Error(`subscribing answered ${created.status}: ${await created.text()}`);
      const { id: subscriptionId, secret } = (await created.json()) as { id: string; secret: string };
      const committedAt = new Map<string, number>();
      const firstCommitWall = Date.now();
      const started = performance.now();
      for (let i = 0; i < EVENTS; i++) {
        const backupId = `bench-${round}-${i}-${randomUUID().slice(0, 8)}`;
        await p.db.transaction((trx) =>
          appendAudit(trx, { actor: 'system:bench', action: 'backup.verified', entityType: 'backup', entityId: backupId, details: { encrypted: true } }),
        );
        committedAt.set(backupId, performance.now());
      }
      const committing = (performance.now() - started) / 1000;
      await rx.waitFor(EVENTS);
      const elapsed = (Math.max(...rx.answeredAt.values()) - started) / 1000;
      const ids = await p.db('domain_events').whereIn('entity_id', [...committedAt.keys()]).select('id', 'entity_id');
      const latencies = ids.map((e: { id: string; entity_id: string }) => rx.answeredAt.get(e.id)! - committedAt.get(e.entity_id)!);
      const parts = await runBreakdown(p, subscriptionId, firstCommitWall);

      // A backlog: the subscription off while EVENTS more events commit, then on; the time from enabling it to the
      // last 2xx is the delivery run's own pace, whatever the pace of the transactions that wrote the events.
      const patch = (enabled: boolean) =>
        fetch(`${p.baseUrl}/api/v1/webhook-subscriptions/${subscriptionId}`, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ enabled }),
        }).then(async (res) => {
          if (res.status !== 200) throw new Error(`PATCH enabled=${enabled} answered ${res.status}: ${await res.text()}`);
        });
      await patch(false);
      for (let i = 0; i < EVENTS; i++) {
        const backupId = `bench-${round}-backlog-${i}-${randomUUID().slice(0, 8)}`;
        await p.db.transaction((trx) =>
          appendAudit(trx, { actor: 'system:bench', action: 'backup.verified', entityType: 'backup', entityId: backupId, details: { encrypted: true } }),
        );
      }
      const enabledAt = performance.now();
      await patch(true);
      await rx.waitFor(2 * EVENTS);
      const drained = EVENTS / ((Math.max(...rx.answeredAt.values()) - enabledAt) / 1000);
      await rx.close();
      await fetch(`${p.baseUrl}/api/v1/webhook-subscriptions/${subscriptionId}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${apiKey}` },
      });

      // The direct loop: the same bodies, signed the same way, POSTed one after the other.
      const direct = await startReceiver();
      const rows = await p.db('domain_events').whereIn('entity_id', [...committedAt.keys()]).orderBy('seq').select('*');
      const directStart = performance.now();
      for (const row of rows) {
        const body = webhookBody(toDomainEvent(row));
        const at = new Date();
        const res = await fetch(direct.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'webhook-id': row.id,
            'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
            'webhook-signature': signWebhook([secret], row.id, at, body),
          },
          body,
        });
        await res.body?.cancel();
      }
      const directElapsed = (performance.now() - directStart) / 1000;
      await direct.close();

      const result = {
        workflow: { perSecond: drained, live: EVENTS / elapsed, p50: median(latencies), p99: percentile(latencies, 0.99) },
        direct: { perSecond: EVENTS / directElapsed },
      };
      rounds.push(result);
      say(
        `round ${round}: a backlog through the delivery run ${r1(result.workflow.perSecond)}/s; live ${r1(result.workflow.live)}/s ` +
          `(commit → 2xx p50 ${r1(result.workflow.p50)} ms, ` +
          `p99 ${r1(result.workflow.p99)} ms); direct loop ${r1(result.direct.perSecond)}/s`,
      );
      say(
        `  events committed at ${r1(EVENTS / committing)}/s; the run: ${parts.activities} activities, ` +
          `waiting for a worker ${r1(parts.queuedMs)} ms, in activities ${r1(parts.activityMs)} ms, between activities ` +
          `${r1(parts.betweenMs)} ms; first commit → first wake-up ${parts.wakeMs === null ? '-' : r1(parts.wakeMs)} ms`,
      );
    }
    const perSecond = median(rounds.map((r) => r.workflow.perSecond));
    const direct = median(rounds.map((r) => r.direct.perSecond));
    const ratio = Math.round((perSecond / direct) * 1000) / 1000;
    const live = median(rounds.map((r) => r.workflow.live));
    console.log(`\n    a backlog delivered through the run  ${r1(perSecond)}/s (median of ${ROUNDS} rounds of ${EVENTS})`);
    console.log(`    live, as the events commit           ${r1(live)}/s (no faster than the bench commits them)`);
    console.log(`    POSTed directly by a loop            ${r1(direct)}/s`);
    console.log(`    ratio                                ${ratio} (target ≥ ${TARGET})`);
    console.log(`    commit → 2xx p50 / p99               ${r1(median(rounds.map((r) => r.workflow.p50)))} / ${r1(median(rounds.map((r) => r.workflow.p99)))} ms\n`);
    console.log(
      JSON.stringify({
        bench: 'webhooks',
        figures: {
          events_per_round: EVENTS,
          rounds: ROUNDS,
          delivered_per_second_median: r1(perSecond),
          live_delivered_per_second_median: r1(live),
          direct_loop_per_second_median: r1(direct),
          commit_to_2xx_p50_ms_median: r1(median(rounds.map((r) => r.workflow.p50))),
          commit_to_2xx_p99_ms_median: r1(median(rounds.map((r) => r.workflow.p99))),
        },
        ratio,
        target: TARGET,
        better: 'higher',
      }),
    );
  } finally {
    await p.stop();
  }
});
