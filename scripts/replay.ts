import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig } from '../common/config';
import { dataConverterFor, loadPayloadKeys, WORKFLOW_INTERCEPTOR_MODULES } from '../platform/data-converter';
import {
  decodePayloadsIn,
  encryptionKeyIdsIn,
  fetchFixture,
  loadFixture,
  replayFixtures,
  saveFixture,
  type ReplayFixture,
} from '../workers/replay';

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
  // Histories with encrypted payloads (from Temporal, or a download without the codec) need the keys they name. They
  // are decoded before the replay, so the replay accepts clear payloads: it takes no inbound action, it re-runs what
  // the run once accepted.
  const dataConverter = dataConverterFor(loadPayloadKeys(config), { allowClear: true });
  let fixture: ReplayFixture;
  const file = option(args, '--file');
  if (file) {
    fixture = await loadFixture(file, option(args, '--workflow-id'));
  } else {
    const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
    try {
      fixture = await fetchFixture(
        new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter }),
        args[0],
        option(args, '--run-id'),
      );
    } finally {
      await connection.close();
    }
    const save = option(args, '--save');
    if (save) {
      await saveFixture(save, fixture);
      console.log(`saved the history to ${save}, payloads decrypted (readable only by you)`);
    }
  }
  // Decrypted up front, so that a missing key is named here rather than surfacing as a replay failure.
  await decodePayloadsIn(fixture.history, dataConverter.payloadCodecs ?? []);
  const keyIds = encryptionKeyIdsIn(fixture.history);
  if (keyIds.length > 0) {
    console.log(
      `✘ ${fixture.workflowId}: the history's payloads are encrypted (key IDs: ${keyIds.join(', ')}) and no payload keys are configured`,
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
