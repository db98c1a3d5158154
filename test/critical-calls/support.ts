import type { Platform } from '../helpers/platform';
import type { TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { mustAnalysisAct, routedSample } from '../results/support';

/** A sample accepted and routed for these tests, naming (or not) an ordering provider, once its analyses are open. */
export const routedWithProvider = (p: Platform, doc: TestUser, tech: TestUser, tests: string[], provider: TestUser | null) =>
  routedSample(p, doc, tech, tests, {}, provider ? { orderingProvider: provider.username } : {});

export const enter = (p: Platform, tech: TestUser, accession: string, test: string, value: number) =>
  mustAnalysisAct(p, tech, accession, test, 'result', { kind: 'numeric', value, unit: 'mmol/L', performedBy: 'bench 1' });

export const callUrl = (accession: string, test: string, tail = '') => `/api/v1/samples/${accession}/analyses/${test}/critical-call${tail}`;

export const logAttempt = (p: Platform, user: TestUser, accession: string, test: string, body: Record<string, unknown>) =>
  p.api('POST', callUrl(accession, test, '/attempts'), { key: user.apiKey, body });

/** The newest call of the test once it is open (an analysis has a new call after a withdrawal or a confirmed call). */
const newestCall = (accession: string, test: string) => testEnv().db('critical_calls').where({ accession, test_code: test }).orderBy('call_number', 'desc').first();

/** The call's row once its run opened it. */
export const openedCall = (accession: string, test: string) => waitFor(() => newestCall(accession, test), `the call of ${test} of ${accession}`);

/** Waits until the newest call's row shows this state (the recording activity's write, not a query of the run). */
export const callInState = (accession: string, test: string, state: string, timeoutMs = 30_000) =>
  waitFor(
    async () => {
      const row = await newestCall(accession, test);
      return row?.state === state ? row : undefined;
    },
    `the call of ${test} of ${accession} ${state}`,
    timeoutMs,
  );
