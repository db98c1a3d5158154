import { createHash } from 'node:crypto';

/** One field of a controlled record that a change altered: what it held before and what it holds now. */
export interface FieldChange {
  field: string;
  old: unknown;
  new: unknown;
}

export interface DiffOptions {
  /**
   * Fields holding PHI: the trail keeps only a hash of each value (the values themselves live in the versioned
   * PHI tables), so the audit trail proves which value a field held without disclosing it.
   */
  phiFields?: readonly string[];
  /** Compare only these fields; by default every field either side names. */
  fields?: readonly string[];
  /** Fields never recorded (bookkeeping such as updated_at). */
  ignore?: readonly string[];
}

const BOOKKEEPING = ['updated_at'];

/** JSON with object keys sorted, Dates as ISO strings and undefined as null: equal values compare equal. */
function canonical(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The value as the trail stores it: plain JSON (Dates as ISO strings); absent is null. */
function plain(value: unknown): unknown {
  return JSON.parse(canonical(value)) as unknown;
}

/** What the trail keeps of a PHI value: its SHA-256 (null stays null, so a cleared field still shows). */
export function phiDigest(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return `sha256:${createHash('sha256').update(canonical(value), 'utf8').digest('hex')}`;
}

/**
 * The fields that differ between two states of a record, each with its old and new value (PHI fields as hashes
 * only). Fields are listed in a stable order so the same change always records the same way.
 */
export function diff(
  before: object | null | undefined,
  after: object | null | undefined,
  options: DiffOptions = {},
): FieldChange[] {
  const a = (before ?? {}) as Record<string, unknown>;
  const b = (after ?? {}) as Record<string, unknown>;
  const ignored = new Set([...BOOKKEEPING, ...(options.ignore ?? [])]);
  const phi = new Set(options.phiFields ?? []);
  const fields = options.fields ?? [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return [...fields]
    .filter((field) => !ignored.has(field))
    .sort()
    .flatMap((field) => {
      if (canonical(a[field]) === canonical(b[field])) return [];
      return phi.has(field)
        ? [{ field, old: phiDigest(a[field]), new: phiDigest(b[field]) }]
        : [{ field, old: plain(a[field]), new: plain(b[field]) }];
    });
}
