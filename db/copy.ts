import type { Knex } from 'knex';

/** The part of node-postgres's connection a COPY needs (pg has the protocol messages but no COPY API). */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}
interface PgClient {
  query(submittable: object): unknown;
}

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
const SPECIAL = /[\\\t\n\r]/;

/** One field in COPY's text format. */
function field(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  if (typeof value === 'boolean') return value ? 't' : 'f';
  const text = typeof value === 'string' ? value : String(value);
  return SPECIAL.test(text) ? text.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]) : text;
}

/**
 * Rows in COPY's text format. Appending to one string and converting it once is the cheapest way measured here
 * (fewer allocations than a string per row or a write per field), which matters for a page of thousands of rows.
 */
function encode(rows: unknown[][]): Buffer {
  let text = '';
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      if (i) text += '\t';
      text += field(row[i]);
    }
    text += '\n';
  }
  return Buffer.from(text);
}

/**
 * `COPY <table> (<columns>) FROM STDIN` on the transaction's own connection: the cheapest way to hand Postgres many
 * rows (no parameter arrays to encode and parse). Returns the number of rows copied.
 */
export async function copyRows(trx: Knex.Transaction, table: string, columns: string[], rows: unknown[][]): Promise<number> {
  if (!rows.length) return 0;
  const data = encode(rows);
  const client = (await trx.client.acquireConnection()) as PgClient;
  return new Promise<number>((resolve, reject) => {
    let copied = 0;
    client.query({
      submit(connection: CopyConnection) {
        connection.query(`copy ${table} (${columns.join(', ')}) from stdin`);
      },
      handleCopyInResponse(connection: CopyConnection) {
        connection.sendCopyFromChunk(data);
        connection.endCopyFrom();
      },
      handleCommandComplete(message: { text: string }) {
        copied = Number(/\d+$/.exec(message.text)?.[0] ?? 0);
      },
      // pg hands an error to the active query and then forgets it (no ReadyForQuery follows for it).
      handleError(err: Error) {
        reject(err);
      },
      handleReadyForQuery() {
        resolve(copied);
      },
    });
  });
}
