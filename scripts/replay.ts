import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig } from '../common/config';
import { temporalConnectionOptions } from '../platform/temporal-connection';
import { dataConverterFor, loadPayloadKeys, WORKFLOW_INTERCEPTOR_MODULES } from '../platform/data-converter';
import { encryptionKeyIdsIn, fetchFixture, loadFixture, replayFixtures, saveFixture, type ReplayFixture } from '../workers/replay';

const usage = `Replays a run's history against the current workflow code and says whether it is deterministic.

  npm run replay -- <workflowId> [--run-id <runId>] [--save <file.json>]
  npm run replay -- --file <history.json> [--workflow-id <id>]

The first form fetches the history from Temporal (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE); --save keeps a copy,
e.g. as a fixture under test/fixtures/histories/<process>/. The second replays a saved history (labflow's fixture format, or the JSON
that the Web UI's "Download" and 'temporal workflow show --output json' produce).`;

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
    console.log(usage);
    return args.length === 0 ? 2 : 0;
  }
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
  });
  const config = loadConfig();
  const keys = loadPayloadKeys(config);
  // A saved history is stored decoded (or downloaded encrypted), and its replay accepts clear payloads: a replay
  // takes no inbound action, it re-runs what the run once accepted.
  let dataConverter = dataConverterFor(keys, { allowClear: true });
  let fixture: ReplayFixture;
  const file = option(args, '--file');
  if (file) {
    fixture = await loadFixture(file, option(args, '--workflow-id'));
  } else {
    const connection = await Connection.connect(temporalConnectionOptions(config));
    try {
      const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter });
      const handle = client.workflow.getHandle(args[0], option(args, '--run-id'));
      const { runId } = await handle.describe();
      fixture = { workflowId: args[0], runId, history: await handle.fetchHistory() };
      const save = option(args, '--save');
      if (save) {
        await saveFixture(save, await fetchFixture(client, args[0], runId));
        console.log(`saved the history to ${save}, payloads decrypted (readable only by you)`);
      }
    } finally {
      await connection.close();
    }
    // A history from Temporal replays as stored, decoded as the worker decodes it: a payload the worker refused for
    // arriving in clear is refused again, as the run's history requires.
    dataConverter = dataConverterFor(keys, { side: 'worker', allowClear: config.PAYLOAD_ALLOW_CLEAR === true });
  }
  // Named here rather than surfacing as a replay failure.
  const missing = encryptionKeyIdsIn(fixture.history).filter((id) => !keys?.all.has(id));
  if (missing.length > 0) {
    console.log(
      `✘ ${fixture.workflowId}: the history's payloads are encrypted with key IDs that are not configured: ${missing.join(', ')}`,
    );
    console.log('  Set PAYLOAD_KEYS or PAYLOAD_KEYS_FILE (after npm start: DATA_DIR/payload-keys is used by itself).');
    return 2;
  }
  const [verdict] = await replayFixtures(
    {
      workflowsPath: require.resolve('../workflows'),
      replayName: 'labflow-replay',
      dataConverter,
      interceptors: { workflowModules: WORKFLOW_INTERCEPTOR_MODULES },
    },
    [fixture],
  );
  if (!verdict.error) {
    console.log(`✔ ${verdict.workflowId}: ${verdict.events} events replay deterministically against the current code`);
    return 0;
  }
  console.log(`✘ ${verdict.workflowId}: the current code does not replay this history`);
  console.log(`  ${verdict.error.name}: ${verdict.error.message.split('\n').join('\n  ')}`);
  console.log('  Guard the change with patched()/deprecatePatch(), or keep the old code path for runs started before it.');
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`replay failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
