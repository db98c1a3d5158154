import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';

type Schema = { type?: string | string[]; format?: string; properties?: Record<string, Schema>; items?: Schema; anyOf?: Schema[]; oneOf?: Schema[] };
type Kind = 'date' | 'number';

const EXTREME: Record<Kind, unknown[]> = {
  date: ['0000-01-01', '9999-12-31T23:59:59Z', '+275760-09-13', '0000-01-01T00:00:00Z', '1899-12-31'],
  number: [1e308, -1, 2 ** 53, -(2 ** 53), 'NaN', 'Infinity', '1e308'],
};
const QUERY_EXTREME: Record<Kind, string[]> = {
  date: ['0000-01-01', '9999-12-31T23:59:59Z', '+275760-09-13'],
  number: ['1e308', '-1', String(2 ** 53), 'NaN', 'Infinity'],
};

function kindOf(schema: Schema): Kind | null {
  const types = ([] as string[]).concat(schema.type ?? []);
  if (types.includes('number') || types.includes('integer')) return 'number';
  if (types.includes('string') && (schema.format === 'date' || schema.format === 'date-time')) return 'date';
  return null;
}

/** Every date and number field of a JSON Schema, with the path to it (array items as index 0). */
function fields(schema: Schema | undefined, path: (string | number)[] = []): { path: (string | number)[]; kind: Kind }[] {
  if (!schema) return [];
  const kind = kindOf(schema);
  const own = kind ? [{ path, kind }] : [];
  const nested = [
    ...Object.entries(schema.properties ?? {}).flatMap(([name, s]) => fields(s, [...path, name])),
    ...(schema.items ? fields(schema.items, [...path, 0]) : []),
    ...[...(schema.anyOf ?? []), ...(schema.oneOf ?? [])].flatMap((s) => fields(s, path)),
  ];
  return [...own, ...nested];
}

function bodyWith(path: (string | number)[], value: unknown): unknown {
  if (!path.length) return value;
  const [head, ...rest] = path;
  if (typeof head === 'number') return [bodyWith(rest, value)];
  return { [head]: bodyWith(rest, value) };
}

/** Path parameters that pass their own checks, so the request reaches the body and the query. */
function paramValue(name: string): string {
  if (/accession/i.test(name)) return 'ACC-26000001';
  if (name === 'number') return 'DOC-0001';
  if (/version/i.test(name)) return '1';
  if (/supplier/i.test(name)) return 'SUP-0001';
  return randomUUID();
}

/** Rows in every table but the rate-limit counters (each request counts itself there, by design). */
async function rowCounts(): Promise<Record<string, number>> {
  const db = testEnv().db;
  const tables: string[] = (
    await db.raw(`select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind = 'r' and relname not in ('rate_limits', 'knex_migrations', 'knex_migrations_lock')`)
  ).rows.map((r: { relname: string }) => r.relname);
  const counts: Record<string, number> = {};
  for (const t of tables) counts[t] = Number((await db(t).count<{ count: number }[]>('* as count'))[0].count);
  return counts;
}

describe('extreme dates and numbers sent to every route', () => {
  let p: Platform;
  let admin: TestUser;
  before(async () => {
    p = await startPlatform({ withWorker: false });
    ({ admin } = await makeUsers({ admin: ['admin', 'clinician'] }));
  });
  after(() => p.stop());

  it('answers 4xx, never 500, to every date and number field of the OpenAPI document, and writes nothing', async () => {
    const doc = (await p.api('GET', '/api/v1/openapi.json', { key: admin.apiKey })).body as {
      paths: Record<string, Record<string, { parameters?: { name: string; in: string; schema: Schema }[]; requestBody?: { content: Record<string, { schema: Schema }> } }>>;
    };
    const before = await rowCounts();
    const answers: { where: string; status: number }[] = [];
    let bodyFields = 0;
    let queryFields = 0;
    for (const [template, operations] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(operations)) {
        const path = template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(paramValue(name)));
        for (const field of fields(op.requestBody?.content['application/json']?.schema)) {
          bodyFields++;
          for (const value of EXTREME[field.kind]) {
            const res = await p.api(method.toUpperCase(), path, { key: admin.apiKey, body: bodyWith(field.path, value) });
            answers.push({ where: `${method.toUpperCase()} ${template} body.${field.path.join('.')}=${JSON.stringify(value)}`, status: res.status });
          }
        }
        for (const param of (op.parameters ?? []).filter((q) => q.in === 'query')) {
          const kind = kindOf(param.schema) ?? fields(param.schema)[0]?.kind;
          if (!kind) continue;
          queryFields++;
          for (const value of QUERY_EXTREME[kind]) {
            const res = await p.api(method.toUpperCase(), `${path}?${param.name}=${encodeURIComponent(value)}`, { key: admin.apiKey });
            answers.push({ where: `${method.toUpperCase()} ${template} ?${param.name}=${value}`, status: res.status });
          }
        }
      }
    }
    assert.ok(bodyFields >= 10 && queryFields >= 5, `the sweep found ${bodyFields} body and ${queryFields} query fields to try`);
    const wrong = answers.filter((a) => a.status < 400 || a.status >= 500);
    assert.deepEqual(wrong, [], 'every extreme value is refused with a 4xx');
    assert.deepEqual(await rowCounts(), before, 'nothing was written');
  });
});
