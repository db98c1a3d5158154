import {
  allHandlersFinished,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';

/** The activities of these workflows, defined in payload-codec.test.ts. */
export interface CodecTestActivities {
  echo(text: string): Promise<string>;
  explode(text: string): Promise<never>;
}

const { echo, explode } = proxyActivities<CodecTestActivities>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 1 } });

/** Passes its input through an activity and returns it: the value crosses history four times. */
export async function echoWorkflow(input: { note: string }): Promise<{ echoed: string }> {
  return { echoed: await echo(input.note) };
}

/** Fails because its activity fails with a message carrying the input. */
export async function explodingWorkflow(input: { note: string }): Promise<void> {
  await explode(input.note);
}

/** The activities of ledgerWorkflow, defined in unencrypted-payloads.test.ts: `record` writes a row in Postgres. */
export interface LedgerActivities {
  record(workflowId: string, entry: string): Promise<void>;
}

const { record } = proxyActivities<LedgerActivities>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 1 } });

export const addEntryUpdate = defineUpdate<string[], [string]>('addEntry');
export const addEntrySignal = defineSignal<[string]>('addEntrySignal');
export const entriesQuery = defineQuery<string[], [string?]>('entries');
export const closeLedgerSignal = defineSignal('closeLedger');

/**
 * Records entries sent by Update or Signal, each through an activity that writes a row: what a run records, in the
 * small. Its input is the first entry.
 */
export async function ledgerWorkflow(input: { first: string }): Promise<string[]> {
  const entries: string[] = [];
  let closed = false;
  const append = async (entry: string) => {
    entries.push(entry);
    await record(workflowInfo().workflowId, entry);
  };
  // Updates and Signals that arrive with the start are handled after the first entry, so the order is always the same.
  const opened = append(input.first);
  const add = async (entry: string) => {
    await opened;
    await append(entry);
  };
  setHandler(
    addEntryUpdate,
    async (entry) => {
      await add(entry);
      return entries;
    },
    {
      validator: (entry) => {
        if (typeof entry !== 'string') throw new Error('an entry is a string');
      },
    },
  );
  setHandler(addEntrySignal, add);
  setHandler(entriesQuery, () => entries);
  setHandler(closeLedgerSignal, () => void (closed = true));
  await opened;
  await condition(() => closed && allHandlersFinished());
  return entries;
}
