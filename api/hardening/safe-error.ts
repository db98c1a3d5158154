/** A PostgreSQL error as node-postgres raises it: a five-character SQLSTATE and the server's fields. */
interface PostgresError {
  code: string;
  severity?: string;
  constraint?: string;
  table?: string;
  column?: string;
  schema?: string;
  dataType?: string;
  routine?: string;
}

export function isPostgresError(err: unknown): err is PostgresError {
  const e = err as Partial<PostgresError> | null;
  return !!e && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string';
}

/** SQLSTATE class 22, data exception: a value the database will not take (a year 0, an integer out of range). */
export const isDataException = (err: unknown) => isPostgresError(err) && err.code.startsWith('22');

/**
 * What an unhandled error may put in a log line. A database error keeps its SQLSTATE, constraint, table and
 * column, never its message, detail or query: PostgreSQL quotes the refused value ("invalid input syntax for type
 * date: ...") and knex prepends the statement. Anything else keeps its name, message and stack, which labflow's
 * own code writes and which carry no request data.
 */
export function loggableError(err: unknown): Record<string, unknown> {
  if (isPostgresError(err)) {
    const { code, severity, constraint, table, column, schema, dataType, routine } = err;
    return Object.fromEntries(
      Object.entries({ type: 'PostgresError', code, severity, constraint, table, column, schema, dataType, routine }).filter(
        ([, v]) => v !== undefined,
      ),
    );
  }
  if (err instanceof Error) return { type: err.name, message: err.message, stack: err.stack };
  return { type: typeof err };
}
