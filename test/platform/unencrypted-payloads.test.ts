import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client, WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { UNENCRYPTED_PAYLOAD_FAILURE } from '../../common/unencrypted-payload';
import { dataConverterFor, FAILURE_CONVERTER_PATH, WORKFLOW_INTERCEPTOR_MODULES, workerInterceptors } from '../../platform/data-converter';
import { AesGcmPayloadCodec, isEncrypted, parsePayloadKeys, UnencryptedPayloadError } from '../../platform/payload-codec';
import { replayFixtures, type History } from '../../workers/replay';
import { testEnv } from '../setup/env';
import type { LedgerActivities } from './codec-workflows';

const LEDGER = 'codec_test_ledger';
const ignore = () => undefined;
const quiet = { log: ignore, trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore };
const json = (value: unknown) => defaultPayloadConverter.toPayload(value) as Payload;
const eventsOf = (history: History) => history.events ?? [];

describe('unencrypted payloads, with payload keys configured', () => {
  const keys = () => parsePayloadKeys(testEnv().payloadKeys);
  let bundle: { code: string };
  const workers: { worker: Worker; running: Promise<void> }[] = [];
  /**
   * A client without labflow's codec, as anyone with access to the Temporal frontend has: what it sends is clear.
   * It can read the (encrypted) answers, only so that the tests can see why it was refused.
   */
  let clear: Client;

  const ledger = (workflowId: string) => testEnv().db(LEDGER).where({ workflow_id: workflowId }).orderBy('seq').pluck('entry');
  const activities: LedgerActivities = {
    record: async (workflowId, entry) => {
      await testEnv().db(LEDGER).insert({ workflow_id: workflowId, entry });
    },
  };

  async function startWorker(allowClear: boolean): Promise<string> {
    const taskQueue = `test-unencrypted-${allowClear ? 'allowed' : 'refused'}-${randomBytes(4).toString('hex')}`;
    const worker = await Worker.create({
      connection: testEnv().nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities,
      dataConverter: dataConverterFor(keys(), { allowClear, side: 'worker' }),
      interceptors: workerInterceptors(),
    });
    workers.push({ worker, running: worker.run() });
    return taskQueue;
  }

  before(async function () {
    this.timeout(120_000);
    const env = testEnv();
    await env.db.raw(`CREATE TABLE IF NOT EXISTS ${LEDGER} (seq bigserial PRIMARY KEY, workflow_id text NOT NULL, entry text NOT NULL)`);
    bundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('./codec-workflows'),
      workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
      failureConverterPath: FAILURE_CONVERTER_PATH,
      logger: quiet,
    });
    const reader = new AesGcmPayloadCodec(keys(), 'allow');
    const sendsClear: PayloadCodec = { encode: async (payloads) => payloads, decode: (payloads) => reader.decode(payloads) };
    clear = new Client({
      connection: env.client.connection,
      dataConverter: { payloadCodecs: [sendsClear], failureConverterPath: FAILURE_CONVERTER_PATH },
    });
  });
  after(async () => {
    for (const { worker } of workers) worker.shutdown();
    await Promise.all(workers.map((w) => w.running));
    // The ledger is this test's, made by the superuser outside the migrations: a table the backup role was never
    // granted, which would fail every later pg_dump of the shared test database.
    await testEnv().db.raw(`DROP TABLE IF EXISTS ${LEDGER}`);
  });

  describe('the codec', () => {
    const plain = json({ note: 'sent in clear' });

    it('refuses an unencrypted payload to a client, naming the problem and not the content', async () => {
      await assert.rejects(new AesGcmPayloadCodec(keys(), 'refuse').decode([plain]), (err: Error) => {
        assert.ok(err instanceof UnencryptedPayloadError);
        assert.match(err.message, /arrived unencrypted.*PAYLOAD_ALLOW_CLEAR/);
        assert.doesNotMatch(err.message, /sent in clear/);
        return true;
      });
    });

    it('marks it for a worker, keeping nothing of it, and passes it through when clear payloads are allowed', async () => {
      const [marked] = await new AesGcmPayloadCodec(keys(), 'mark').decode([plain]);
      assert.deepEqual(defaultPayloadConverter.fromPayload(marked), { 'labflow:refused': 'unencrypted-payload' });
      assert.doesNotMatch(Buffer.from(marked.data!).toString(), /sent in clear/);
      const [allowed] = await new AesGcmPayloadCodec(keys(), 'allow').decode([plain]);
      assert.equal(allowed, plain);
      const [encrypted] = await new AesGcmPayloadCodec(keys(), 'mark').encode([plain]);
      assert.ok(isEncrypted(encrypted));
      const [decrypted] = await new AesGcmPayloadCodec(keys(), 'mark').decode([encrypted]);
      assert.deepEqual(defaultPayloadConverter.fromPayload(decrypted), { note: 'sent in clear' }, 'encrypted payloads decode as ever');
    });

    it('makes the API client refuse and the worker mark, unless PAYLOAD_ALLOW_CLEAR', () => {
      const modeOf = (converter: ReturnType<typeof dataConverterFor>) => (converter.payloadCodecs?.[0] as AesGcmPayloadCodec).unencrypted;
      assert.equal(modeOf(dataConverterFor(keys())), 'refuse');
      assert.equal(modeOf(dataConverterFor(keys(), { side: 'worker' })), 'mark');
      assert.equal(modeOf(dataConverterFor(keys(), { side: 'worker', allowClear: true })), 'allow');
      assert.equal(modeOf(dataConverterFor(keys(), { allowClear: true })), 'allow');
    });

    it('refuses an activity task whose input arrived unencrypted, without retrying it', async () => {
      const factory = workerInterceptors().activity![0];
      const inbound = factory({ info: { heartbeatDetails: undefined } } as never).inbound!;
      let ran = false;
      const next = async () => {
        ran = true;
      };
      const marker = defaultPayloadConverter.fromPayload((await new AesGcmPayloadCodec(keys(), 'mark').decode([json('x')]))[0]);
      await assert.rejects(inbound.execute!({ args: [marker], headers: {} }, next), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure);
        assert.equal(err.type, UNENCRYPTED_PAYLOAD_FAILURE);
        assert.equal(err.nonRetryable, true);
        return true;
      });
      assert.equal(ran, false);
      await inbound.execute!({ args: ['encrypted and decoded'], headers: {} }, next);
      assert.equal(ran, true);
    });
  });

  describe('a worker that refuses them (the default)', () => {
    let taskQueue: string;
    before(async function () {
      this.timeout(60_000);
      taskQueue = await startWorker(false);
    });

    const startLedger = async () => {
      const workflowId = `codec-test:ledger-${randomBytes(4).toString('hex')}`;
      const handle = await testEnv().client.workflow.start('ledgerWorkflow', { workflowId, taskQueue, args: [{ first: 'opened' }] });
      // The first entry is recorded once the run answers an Update: the run is up.
      assert.deepEqual(await handle.executeUpdate('addEntry', { args: ['by labflow'] }), ['opened', 'by labflow']);
      return { workflowId, handle };
    };

    it('fails a run started in clear before it does anything, saying why and not what it was sent', async () => {
      const workflowId = `codec-test:ledger-clear-${randomBytes(4).toString('hex')}`;
      const handle = await clear.workflow.start('ledgerWorkflow', { workflowId, taskQueue, args: [{ first: 'forged-start' }] });
      const failure = await handle.result().then(
        () => assert.fail('the run must not complete'),
        (err: unknown) => err,
      );
      assert.ok(failure instanceof WorkflowFailedError);
      assert.ok(failure.cause instanceof ApplicationFailure);
      assert.equal(failure.cause.type, UNENCRYPTED_PAYLOAD_FAILURE);
      assert.equal(failure.cause.nonRetryable, true);
      assert.match(failure.cause.message, /the run's input arrived unencrypted/);
      assert.doesNotMatch(failure.cause.message, /forged/);

      const events = eventsOf(await handle.fetchHistory());
      assert.ok(!events.some((e) => e.activityTaskScheduledEventAttributes), 'no step ran');
      assert.ok(!events.some((e) => e.workflowTaskFailedEventAttributes), 'failed once, not retried');
      assert.deepEqual(await ledger(workflowId), []);
    });

    it('rejects an Update sent in clear: the caller gets the reason, nothing enters history or Postgres, the run goes on', async () => {
      const { workflowId, handle } = await startLedger();
      const refused = await clear.workflow
        .getHandle(workflowId)
        .executeUpdate('addEntry', { args: ['forged-update'] })
        .then(
          () => assert.fail('the update must be rejected'),
          (err: unknown) => err,
        );
      assert.ok(refused instanceof WorkflowUpdateFailedError);
      assert.ok(refused.cause instanceof ApplicationFailure);
      assert.equal(refused.cause.type, UNENCRYPTED_PAYLOAD_FAILURE);
      assert.match(refused.cause.message, /the arguments of update addEntry arrived unencrypted/);
      assert.doesNotMatch(refused.cause.message, /forged/);

      const accepted = eventsOf(await handle.fetchHistory()).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
      assert.equal(accepted.length, 1, "only labflow's own update was accepted");
      assert.deepEqual(await ledger(workflowId), ['opened', 'by labflow']);
      assert.deepEqual(await handle.executeUpdate('addEntry', { args: ['after the refusal'] }), [
        'opened',
        'by labflow',
        'after the refusal',
      ]);
      assert.deepEqual(await ledger(workflowId), ['opened', 'by labflow', 'after the refusal']);
    });

    it('does not apply a Signal sent in clear, and the run stays healthy (no failed workflow task)', async () => {
      const { workflowId, handle } = await startLedger();
      await clear.workflow.getHandle(workflowId).signal('addEntrySignal', 'forged-signal');
      // Processed in order: once this Update is answered, the Signal before it has been handled.
      assert.deepEqual(await handle.executeUpdate('addEntry', { args: ['after the signal'] }), [
        'opened',
        'by labflow',
        'after the signal',
      ]);
      assert.deepEqual(await ledger(workflowId), ['opened', 'by labflow', 'after the signal']);

      const events = eventsOf(await handle.fetchHistory());
      assert.ok(
        events.some((e) => e.workflowExecutionSignaledEventAttributes),
        'the server recorded the signal',
      );
      assert.ok(!events.some((e) => e.workflowTaskFailedEventAttributes), 'no workflow task failed');
      await handle.signal('closeLedger');
      assert.deepEqual(await handle.result(), ['opened', 'by labflow', 'after the signal']);

      // Replayed as stored and decoded as the worker decodes (npm run replay <workflowId>), the refusal replays too.
      const history = await handle.fetchHistory();
      const asWorker = dataConverterFor(keys(), { side: 'worker' });
      const [verdict] = await replayFixtures({ workflowBundle: bundle, dataConverter: asWorker }, [{ workflowId, history }]);
      assert.equal(verdict.error, undefined, verdict.error?.message);
      const allowing = dataConverterFor(keys(), { side: 'worker', allowClear: true });
      const [diverged] = await replayFixtures({ workflowBundle: bundle, dataConverter: allowing }, [{ workflowId, history }]);
      assert.ok(diverged.error, 'accepting the clear signal would contradict the recorded run');
    });

    it('fails a query whose arguments arrived in clear', async () => {
      const { workflowId, handle } = await startLedger();
      // The reason travels encrypted, and a query's failure reaches the client only as its message ("Encoded failure").
      await assert.rejects(clear.workflow.getHandle(workflowId).query('entries', 'clear argument'));
      assert.deepEqual(await handle.query('entries'), ['opened', 'by labflow']);
      const events = eventsOf(await handle.fetchHistory());
      assert.ok(!events.some((e) => e.workflowTaskFailedEventAttributes), 'no workflow task failed');
      await handle.signal('closeLedger');
      await handle.result();
    });
  });

  describe('with PAYLOAD_ALLOW_CLEAR (a migration window)', () => {
    let taskQueue: string;
    before(async function () {
      this.timeout(60_000);
      taskQueue = await startWorker(true);
    });

    it('accepts a start, an Update and a Signal sent in clear', async () => {
      const workflowId = `codec-test:ledger-migrating-${randomBytes(4).toString('hex')}`;
      const handle = await clear.workflow.start('ledgerWorkflow', { workflowId, taskQueue, args: [{ first: 'clear start' }] });
      assert.deepEqual(await handle.executeUpdate('addEntry', { args: ['clear update'] }), ['clear start', 'clear update']);
      await handle.signal('addEntrySignal', 'clear signal');
      await handle.signal('closeLedger');
      assert.deepEqual(await handle.result(), ['clear start', 'clear update', 'clear signal']);
      assert.deepEqual(await ledger(workflowId), ['clear start', 'clear update', 'clear signal']);
    });

    it('leaves the API refusing what Temporal hands it in clear, unless the API too is told to allow it', async () => {
      const workflowId = `codec-test:ledger-memo-${randomBytes(4).toString('hex')}`;
      const handle = await clear.workflow.start('ledgerWorkflow', {
        workflowId,
        taskQueue,
        args: [{ first: 'x' }],
        memo: { note: 'clear memo' },
      });
      const api = new Client({ connection: testEnv().client.connection, dataConverter: dataConverterFor(keys()) });
      await assert.rejects(api.workflow.getHandle(workflowId).describe(), (err: unknown) => {
        assert.ok(err instanceof UnencryptedPayloadError);
        assert.doesNotMatch(err.message, /clear memo/);
        return true;
      });
      const migrating = new Client({
        connection: testEnv().client.connection,
        dataConverter: dataConverterFor(keys(), { allowClear: true }),
      });
      assert.deepEqual((await migrating.workflow.getHandle(workflowId).describe()).memo, { note: 'clear memo' });
      await handle.signal('closeLedger');
      await handle.result();
    });
  });
});
