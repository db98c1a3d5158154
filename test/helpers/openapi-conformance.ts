import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Context, Next } from 'koa';

export interface Exchange {
  method: string;
  /** The matched route pattern (/api/v1/documents/:number), absent when no route matched. */
  route?: string;
  status: number;
  type: string;
  body: unknown;
}

type Media = { schema?: Record<string, unknown> };
type Operation = { responses: Record<string, { content?: Record<string, Media> }> };
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Record<string, unknown>> };
}

/** A Koa middleware (startPlatform's onResponse) that records every answer as it goes on the wire. */
export function responseRecorder() {
  const exchanges: Exchange[] = [];
  const middleware = async (ctx: Context, next: Next) => {
    try {
      await next();
    } finally {
      const body = ctx.body;
      const json = /json/.test(ctx.response.type) && body !== undefined && !Buffer.isBuffer(body);
      exchanges.push({
        method: ctx.method.toLowerCase(),
        route: (ctx as Context & { _matchedRoute?: string })._matchedRoute,
        status: ctx.status,
        type: ctx.response.type,
        body: json ? JSON.parse(JSON.stringify(body)) : undefined,
      });
    }
  };
  return { exchanges, middleware };
}

/**
 * Checks recorded answers against the OpenAPI document: the operation declares the status, the media type, and the
 * body validates against the declared schema. Returns one line per drift.
 */
export function driftsFrom(doc: Document, exchanges: Exchange[]): { drifts: string[]; checked: Set<string> } {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const problem = ajv.compile(doc.components.schemas.Problem);
  const compiled = new Map<Record<string, unknown>, ReturnType<typeof ajv.compile>>();
  const drifts: string[] = [];
  const checked = new Set<string>();
  for (const ex of exchanges) {
    if (!ex.route || ex.method === 'head') continue; // no route matched: the router's own 404/405
    const path = ex.route.replace(/:(\w+)/g, '{$1}');
    const op = doc.paths[path]?.[ex.method];
    const name = `${ex.method.toUpperCase()} ${path} ${ex.status}`;
    if (!op) {
      drifts.push(`${name}: not in the document`);
      continue;
    }
    checked.add(name);
    const declared = op.responses[String(ex.status)];
    if (!declared) {
      drifts.push(`${name}: status not declared (declared: ${Object.keys(op.responses).join(', ')})`);
      continue;
    }
    if (!declared.content) {
      if (ex.body !== undefined) drifts.push(`${name}: a body where none is declared`);
      continue;
    }
    const [mediaType, media] = Object.entries(declared.content).find(([t]) => t.split(';')[0] === ex.type) ?? [];
    if (!mediaType || !media?.schema) {
      drifts.push(`${name}: answered ${ex.type}, declared ${Object.keys(declared.content).join(', ')}`);
      continue;
    }
    if (ex.body === undefined) continue; // text: the media type is the check
    const validate =
      media.schema.$ref === '#/components/schemas/Problem'
        ? problem
        : (compiled.get(media.schema) ?? compiled.set(media.schema, ajv.compile(media.schema)).get(media.schema)!);
    if (!validate(ex.body)) {
      drifts.push(`${name}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(ex.body).slice(0, 300)}`);
    }
  }
  return { drifts, checked };
}
