import type { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { ALL_SEARCH_ATTRIBUTES } from '../common/search-attributes';

const INDEXED_TYPE: Record<string, temporal.api.enums.v1.IndexedValueType> = {
  KEYWORD: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  KEYWORD_LIST: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
  DATETIME: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  TEXT: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  INT: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
  DOUBLE: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  BOOL: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
};

/** Registers labflow's search attributes on the namespace if they are missing; returns the names it added. */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = ALL_SEARCH_ATTRIBUTES.filter((key) => !known.has(key.name));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((key) => [key.name, INDEXED_TYPE[key.type]])),
  });
  return missing.map((key) => key.name);
}

/**
 * A visibility query that names every labflow search attribute. The frontend resolves the names through the same
 * per-namespace mapping it checks a new run's search attributes against, so once this count answers, starting a
 * run with them does too. Registration alone is not enough: a real server takes a while (its namespace cache
 * refresh) before a freshly added attribute is usable.
 */
export const SEARCH_ATTRIBUTES_PROBE =
  'EntityType = "labflow-readiness-probe" AND EntityId = "-" AND Stage = "-" AND Assignees = "-" AND DueAt > "2000-01-01T00:00:00Z"';

/** The error a real server answers while an attribute has no mapping yet (or was never registered) on the namespace. */
export const UNMAPPED_SEARCH_ATTRIBUTE = /no mapping defined for search attribute|is not a valid search attribute|invalid search attribute/i;

/** One probe: null when the attributes are usable, else the server's reason (one line). */
export async function searchAttributesProblem(connection: Connection, namespace: string, timeoutMs = 5000): Promise<string | null> {
  try {
    await connection.withDeadline(Date.now() + timeoutMs, () =>
      connection.workflowService.countWorkflowExecutions({ namespace, query: SEARCH_ATTRIBUTES_PROBE }),
    );
    return null;
  } catch (err) {
    return (err instanceof Error ? err.message : String(err)).split('\n')[0];
  }
}

export interface UsableOptions {
  timeoutMs: number;
  /** How many probes in a row must pass: a cluster's frontends refresh their caches independently. */
  consecutive?: number;
  intervalMs?: number;
  giveUp?: () => boolean;
  onWait?: (reason: string, waitedMs: number) => void;
}

/**
 * Waits until labflow's search attributes can be used on the namespace; throws with the last reason after
 * `timeoutMs`. Returns how long it waited.
 */
export async function waitUntilSearchAttributesUsable(connection: Connection, namespace: string, options: UsableOptions): Promise<number> {
  const started = Date.now();
  const consecutive = options.consecutive ?? 2;
  const interval = options.intervalMs ?? 500;
  let passed = 0;
  let lastReason = 'not probed yet';
  let lastReported = 0;
  while (Date.now() - started < options.timeoutMs) {
    if (options.giveUp?.()) throw new Error('gave up waiting for the search attributes');
    const problem = await searchAttributesProblem(connection, namespace);
    if (problem === null) {
      passed += 1;
      if (passed >= consecutive) return Date.now() - started;
    } else {
      passed = 0;
      lastReason = problem;
      if (options.onWait && Date.now() - lastReported >= 5000) {
        lastReported = Date.now();
        options.onWait(problem, Date.now() - started);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
  throw new Error(
    `labflow's search attributes are not usable on namespace "${namespace}" after ${Math.round(options.timeoutMs / 1000)} s: ${lastReason}`,
  );
}
