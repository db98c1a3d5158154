/**
 * What a worker's payload codec puts in place of an inbound payload that arrived unencrypted while payload keys are
 * configured (and PAYLOAD_ALLOW_CLEAR is off). It is a plain JSON value, so that deserializing it never fails: a
 * signal that cannot be deserialized fails its workflow task on every retry, since the signal stays in history,
 * and the run would be stuck. The workflow guard (workflows/lib/unencrypted-payload-guard.ts) and the activity guard
 * (platform/data-converter.ts) find it and refuse what carries it. It holds nothing of the refused payload.
 */
export const UNENCRYPTED_MARKER_KEY = 'labflow:refused';
export const UNENCRYPTED_MARKER_VALUE = 'unencrypted-payload';

/** The failure type of a refusal, for callers that map failures (e.g. an Update rejected for this reason). */
export const UNENCRYPTED_PAYLOAD_FAILURE = 'UnencryptedPayload';

export const isUnencryptedMarker = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && (value as Record<string, unknown>)[UNENCRYPTED_MARKER_KEY] === UNENCRYPTED_MARKER_VALUE;

/** Says what was refused and why, never what it held (nothing of it is kept). */
export const unencryptedRefusal = (what: string) =>
  `${what} arrived unencrypted: with payload keys configured, labflow accepts only payloads encrypted with its keys ` +
  `(PAYLOAD_ALLOW_CLEAR is off)`;
