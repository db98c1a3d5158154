import { Connection, type ConnectionOptions } from '@temporalio/client';
import { waitUntilSearchAttributesUsable } from '../../workers/search-attributes';
import { say, StartError } from './say';

/**
 * Ready means a submit can start its run: labflow's search attributes must resolve on the namespace, which on a
 * real server happens some seconds after the worker registers them (the dev server has them from its flags).
 */
export async function waitForSearchAttributes(
  connectionOptions: ConnectionOptions,
  namespace: string,
  options: { timeoutMs: number; giveUp: () => boolean },
): Promise<void> {
  const connection = await Connection.connect({ ...connectionOptions, connectTimeout: 5000 });
  try {
    await waitUntilSearchAttributesUsable(connection, namespace, {
      timeoutMs: options.timeoutMs,
      giveUp: options.giveUp,
      onWait: (reason, waitedMs) => say(`waiting for labflow's search attributes to become usable (${Math.round(waitedMs / 1000)} s): ${reason}`),
    });
  } catch (err) {
    if (options.giveUp()) return;
    throw new StartError((err as Error).message);
  } finally {
    await connection.close().catch(() => undefined);
  }
}
