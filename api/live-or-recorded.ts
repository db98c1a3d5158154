import { WorkflowNotFoundError, type QueryDefinition, type WorkflowHandle } from '@temporalio/client';
import { temporalUnreachable } from './temporal-unreachable';

/**
 * What a read shows of a process: the live run's own state while it answers, else what Postgres recorded of it.
 * One source per answer, never a field-by-field merge of the two, so a reader never sees half of each.
 * Returns null when there is neither a run nor a record. While Temporal does not answer, a read that has a record
 * is answered from it (`live` null, as for a finished run): the record is what labflow keeps; only a read with no
 * record to fall back on fails (503).
 */
export async function liveOrRecorded<S, V>(opts: {
  /** The run to ask, or null when the record says it has none (finished, never started). */
  run: WorkflowHandle | null;
  query: QueryDefinition<S>;
  /** The view from the live state. */
  fromLive: (state: S) => V;
  /** The view from the Postgres projection, or null when there is no record. */
  recorded: V | null;
}): Promise<{ view: V; live: S | null } | null> {
  let live: S | null = null;
  if (opts.run) {
    try {
      live = await opts.run.query(opts.query);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError) && !(temporalUnreachable(err) && opts.recorded !== null)) throw err;
    }
  }
  if (live !== null) return { view: opts.fromLive(live), live };
  return opts.recorded === null ? null : { view: opts.recorded, live: null };
}
