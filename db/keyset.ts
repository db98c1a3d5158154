/**
 * Keyset pagination cursors. A cursor names only the sort and the ID of the last row served; the sort key values
 * are read back from that row by the next query. Names, birth dates and note times are PHI, and cursors travel in
 * URLs, which proxies and browsers keep.
 */
export interface Cursor {
  sort: string;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify({ s: cursor.sort, id: cursor.id }), 'utf8').toString('base64url');
}

export function decodeCursor(text: string): Cursor | undefined {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(text)) return undefined;
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as { s?: unknown; id?: unknown };
    if (typeof value.s !== 'string' || typeof value.id !== 'string' || !UUID.test(value.id)) return undefined;
    return { sort: value.s, id: value.id };
  } catch {
    return undefined;
  }
}

/** The row comparison that continues after the cursor row, in the sort's direction (every key shares it). */
export function afterRow(keys: string[], desc: boolean, table: string, alias: string): string {
  const list = keys.join(', ');
  const inner = keys.map((k) => k.replaceAll(`${alias}.`, 'c.')).join(', ');
  return `(${list}) ${desc ? '<' : '>'} (select ${inner} from ${table} c where c.id = ?)`;
}
