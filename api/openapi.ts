import { z } from 'zod';
import { EXEMPT as RATE_LIMIT_EXEMPT } from './hardening/rate-limits';
import type { ResponseSchemas, RouteSpec } from './route';
import { boundedValues } from './schemas/common';

/** Every problem+json body (RFC 9457), as api/problem.ts writes it; some types add fields of their own. */
export const problemSchema = z.looseObject({
  type: z.string().describe('urn:labflow:problem:<slug>, stable for clients to switch on'),
  title: z.string(),
  status: z.int(),
  detail: z.string().optional(),
  instance: z.string().optional().describe('the request path'),
  errors: z.array(z.looseObject({ field: z.string(), detail: z.string() })).optional().describe('the offending fields'),
});

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No content',
  400: 'The request is not valid (validation, malformed JSON)',
  401: 'No credentials, or credentials that are not accepted',
  403: 'Not allowed (role, assignment, signing password)',
  404: 'Not found',
  409: 'Conflict with the current state',
  410: 'Gone: the record or file existed and was removed (e.g. an expired bulk export)',
  413: 'Request body too large',
  415: 'Unsupported media type: send application/json',
  422: 'Well-formed but refused (out of bounds, a rule named in the type)',
  423: 'Locked',
  429: 'Too many requests (rate limit or concurrent requests); see Retry-After and RateLimit-*',
  502: 'An upstream answered with something that cannot be trusted',
  503: 'A dependency (PostgreSQL, Temporal) is unavailable; retry later',
};

export const SECURITY_SCHEMES = {
  apiKey: {
    type: 'http',
    scheme: 'bearer',
    description:
      'A labflow API key ("Authorization: Bearer <key>"), or, with single sign-on configured, an OpenID Connect access token from the lab\'s identity provider.',
  },
  codecSession: {
    type: 'apiKey',
    in: 'cookie',
    name: 'labflow_codec',
    description: 'The browser session POST /codec/session opens for the Temporal Web UI (8 hours, path /codec).',
  },
  webhookSignature: {
    type: 'apiKey',
    in: 'header',
    name: 'X-Labflow-Signature',
    description:
      'HMAC-SHA256 in hex (optionally "sha256=<hex>") over "<X-Labflow-Timestamp>.<raw body>" with the source\'s secret; ' +
      'the timestamp (Unix seconds) must be within 5 minutes of the server clock.',
  },
} as const;
export type SecurityScheme = keyof typeof SECURITY_SCHEMES;

const TAGS: Record<string, string> = {
  documents: 'Controlled documents, their versions and routing templates',
  'document approval': 'Review, approval and retirement of a document version (a run per version)',
  inbox: 'Tasks and notifications',
  notifications: 'Notification channels (email, in-app, Slack, SMS) and acknowledging urgent notices',
  operations: 'Runs, audit, health, readiness and metrics',
  identity: 'Users and who the caller is',
  capa: 'Corrective and preventive actions',
  training: 'Training on every effective version, the training matrices, and the gate before governed work',
  'sample intake': 'Samples from accession to result, and the signed webhooks of instruments and couriers',
  equipment: 'Instruments: register, calibration, QC, defects, maintenance, service and retirement (a run per instrument)',
  erp: 'Supplier synchronisation with the ERP',
  backups: 'Backups and restores',
  patients: 'Patients, SOAP notes, care teams, retention and access log (PHI)',
  summaries: 'AI summaries of SOAP notes and their review',
  codec: 'The payload codec of the Temporal Web UI and CLI (not under /api/v1)',
  documentation: 'This document and its reader',
};

/**
 * An operation mounted outside route specs (health, metrics, the codec, the signed webhooks, this document): described
 * by hand beside its mount, with the same schemas.
 */
export interface DocumentedOperation {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete' | 'options';
  /** The full path, OpenAPI style ({param}). */
  path: string;
  summary: string;
  tag: string;
  description?: string;
  /** Any one of these schemes is accepted; none: open. */
  security: readonly SecurityScheme[];
  parameters?: Record<string, unknown>[];
  body?: z.ZodType;
  /** Each status: a success body's schema, null for none, 'problem' for problem+json. */
  responses: Record<number, z.ZodType | null | 'problem'>;
  /** The media type of success bodies when not JSON. */
  responseType?: string;
  /** Further media types the success body may take, with their schemas (an export's PDF and CSV beside its JSON). */
  alternatives?: Record<string, z.ZodType>;
}

const jsonSchema = (schema: z.ZodType, io: 'input' | 'output') => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' });
  return rest;
};

/** Whether a request schema holds a bounded value (a date, a duration), which parseOrProblem refuses with 422. */
function holdsBoundedValue(schema: z.ZodType): boolean {
  let found = false;
  z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
    override: (ctx) => {
      if (boundedValues.has(ctx.zodSchema)) found = true;
    },
  });
  return found;
}

const successMap = (response: ResponseSchemas): Record<number, z.ZodType | null> =>
  response instanceof z.ZodType ? { 200: response } : response;

/** The error statuses a route spec can answer: derived from what it declares, plus its own `problems`. */
export function problemStatuses(spec: RouteSpec): number[] {
  const statuses = new Set<number>([401, 429, 503, ...(spec.problems ?? [])]);
  const inputs = [spec.params, spec.query, spec.body].filter((s): s is z.ZodType => s !== undefined);
  if (inputs.length) statuses.add(400);
  if (spec.method !== 'get') [400, 413, 415].forEach((s) => statuses.add(s)); // every non-GET reads a JSON body
  if (spec.roles !== 'any' || spec.access) statuses.add(403);
  if (spec.params) statuses.add(404);
  if (inputs.some(holdsBoundedValue)) statuses.add(422);
  return [...statuses].sort();
}

function fromRouteSpec(spec: RouteSpec): DocumentedOperation {
  const parameters = [
    ...Object.keys((spec.params as z.ZodObject | undefined)?.shape ?? {}).map((name) => ({
      name,
      in: 'path',
      required: true,
      schema: { type: 'string' },
    })),
    ...Object.entries((spec.query as z.ZodObject | undefined)?.shape ?? {}).map(([name, schema]) => ({
      name,
      in: 'query',
      required: false,
      schema: jsonSchema(schema as z.ZodType, 'input'),
    })),
  ];
  const responses: DocumentedOperation['responses'] = { ...successMap(spec.response) };
  for (const status of problemStatuses(spec)) responses[status] = 'problem';
  return {
    method: spec.method,
    path: `/api/v1${spec.path}`.replace(/:(\w+)/g, '{$1}'),
    summary: spec.summary,
    tag: spec.tag,
    description:
      spec.access ??
      (spec.roles === 'any' ? 'Any authenticated user.' : `Roles: ${spec.roles.join(', ')}${spec.adminPasses === false ? ' (not admin).' : ' (admin always).'}`),
    security: ['apiKey'],
    parameters,
    body: spec.body,
    responses,
    responseType: spec.responseType,
    alternatives: spec.alternatives,
  };
}

const operationId = (method: string, path: string) =>
  `${method}_${path.replace(/^\/api\/v1/, '').replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '')}`;

function render(op: DocumentedOperation): Record<string, unknown> {
  const responses = Object.fromEntries(
    Object.entries(op.responses).map(([status, schema]) => {
      const description = STATUS_TEXT[Number(status)] ?? `Status ${status}`;
      if (schema === null) return [status, { description }];
      if (schema === 'problem') {
        return [status, { description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } }];
      }
      const others = Object.entries(op.alternatives ?? {}).map(([type, alt]) => [type, { schema: jsonSchema(alt, 'output') }]);
      return [
        status,
        { description, content: { [op.responseType ?? 'application/json']: { schema: jsonSchema(schema, 'output') }, ...Object.fromEntries(others) } },
      ];
    }),
  );
  return {
    operationId: operationId(op.method, op.path),
    summary: op.summary,
    tags: [op.tag],
    ...(op.description ? { description: op.description } : {}),
    ...(op.parameters?.length ? { parameters: op.parameters } : {}),
    ...(op.body
      ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(op.body, 'input') } } } }
      : {}),
    responses,
    security: op.security.map((scheme) => ({ [scheme]: [] })),
  };
}

/** The OpenAPI 3.1 document of every route: the route specs and the operations mounted beside them. */
export function openApiDocument(specs: RouteSpec[], others: DocumentedOperation[]): Record<string, unknown> {
  // Every request but the probes' counts against the rate limits (api/hardening/rate-limits.ts).
  const limited = (op: DocumentedOperation): DocumentedOperation =>
    RATE_LIMIT_EXEMPT.has(op.path) ? op : { ...op, responses: { ...op.responses, 429: 'problem' } };
  const operations = [...others, ...specs.map(fromRouteSpec)].map(limited);
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    paths[op.path] ??= {};
    paths[op.path][op.method] = render(op);
  }
  const used = new Set(operations.map((op) => op.tag));
  return {
    openapi: '3.1.0',
    info: {
      title: 'labflow API',
      version: '1',
      description:
        'A regulated laboratory\'s processes as durable workflows. Errors are application/problem+json with a stable `type`. ' +
        'The reader of this document is served at /api/docs.',
    },
    servers: [{ url: '/', description: 'this labflow API' }],
    tags: [...used].sort().map((name) => ({ name, description: TAGS[name] ?? name })),
    components: {
      securitySchemes: SECURITY_SCHEMES,
      schemas: { Problem: jsonSchema(problemSchema, 'output') },
    },
    paths,
  };
}
