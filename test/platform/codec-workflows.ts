import { proxyActivities } from '@temporalio/workflow';

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
