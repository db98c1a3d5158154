import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { freePort } from '../../scripts/lib/free-port';
import { spawnWorkerProcess, stopProcess } from '../../scripts/lib/worker-process';
import { testEnv } from '../setup/env';
import { waitFor } from '../helpers/wait';

describe('the worker process', () => {
  let worker: ChildProcess | undefined;
  after(async () => {
    if (worker) await stopProcess(worker);
  });

  it("serves the Temporal runtime's Prometheus metrics on the configured port and stops cleanly on SIGTERM", async () => {
    const port = await freePort();
    worker = await spawnWorkerProcess({
      TEMPORAL_ADDRESS: testEnv().temporalAddress,
      TEMPORAL_TASK_QUEUE: 'metrics-check',
      DATABASE_URL: testEnv().databaseUrl,
      WORKER_METRICS_PORT: String(port),
      PAYLOAD_KEYS: testEnv().payloadKeys,
    });
    const body = await waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => null);
      const text = res?.ok ? await res.text() : '';
      return /temporal_/.test(text) ? text : null;
    }, 'metrics served');
    assert.match(body, /# TYPE temporal_\w+/);
    assert.match(body, /task_queue="metrics-check"/);
    const exited = new Promise<number | null>((resolve) => worker!.once('exit', (code) => resolve(code)));
    worker.kill('SIGTERM');
    assert.equal(await exited, 0);
    worker = undefined;
  });
});
