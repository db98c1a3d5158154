import { auditTrailPage, type AuditTrailRow } from '../../db/audit';
import { findCapa } from '../../db/capa';
import { findDocument } from '../../db/documents';
import { sampleTrailPage } from '../../db/sample-trail';
import { usernameTaken } from '../../db/users';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { capaParams } from '../schemas/capa';
import { documentParams } from '../schemas/documents';
import { auditTrailQuery } from '../schemas/exports';
import { accessionParams } from '../schemas/sample-intake';
import { userParams } from '../schemas/users';
import { patientParams } from '../schemas/patients';
import { PHI_ACCESS, phiAccessLog } from '../patient-access';
import { loadSample, requireSampleAccess } from '../services/sample-intake';
import { CAPA_READERS, DOCUMENT_READERS } from './exports';

const tag = 'records out';
const paged = 'oldest first, a keyset page at a time: pass the answer\'s "next" as "after" until it is null';

export function auditTrailRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  const phi = phiAccessLog(deps);
  type Page = { afterSeq?: number; limit: number };
  /** One page read by `read`, with the `after` of the next one (null at the end). */
  const pageOf = async (read: (page: Page) => Promise<AuditTrailRow[]>, query: { after?: number; limit: number }) => {
    const items = await read({ afterSeq: query.after, limit: query.limit });
    return { items, next: items.length === query.limit ? items[items.length - 1].seq : null };
  };
  const page = (entityType: string, entityId: string, query: { after?: number; limit: number }) =>
    pageOf((p) => auditTrailPage(db, entityType, [entityId], p), query);
  return [
    route({
      method: 'get',
      response: R.auditTrailPage,
      path: '/documents/:number/audit-trail',
      summary: `A document's complete audit trail, ${paged}`,
      tag,
      roles: DOCUMENT_READERS,
      params: documentParams,
      query: auditTrailQuery,
      handler: async ({ params, query, ctx }) => {
        if (!(await findDocument(db, params.number))) throw problems.notFound(`document ${params.number}`);
        ctx.body = { number: params.number, ...(await page('document', params.number, query)) };
      },
    }),
    route({
      method: 'get',
      response: R.auditTrailPage,
      path: '/capas/:number/audit-trail',
      summary: `A CAPA's complete audit trail, ${paged}`,
      tag,
      roles: CAPA_READERS,
      params: capaParams,
      query: auditTrailQuery,
      handler: async ({ params, query, ctx }) => {
        if (!(await findCapa(db, params.number))) throw problems.notFound(`CAPA ${params.number}`);
        ctx.body = { number: params.number, ...(await page('capa', params.number, query)) };
      },
    }),
    route({
      method: 'get',
      response: R.auditTrailPage,
      path: '/samples/:accession/audit-trail',
      summary:
        `A sample's complete audit trail: its own events and those of its analyses (every retest), reports (every version) and critical-value calls, in chain order, ${paged}`,
      tag,
      roles: 'any',
      access:
        'Lab technicians, lab directors, admins, and the clinician who submitted the sample. Each page read, and each refusal, is a PHI access event.',
      params: accessionParams,
      query: auditTrailQuery,
      handler: async ({ params, query, actor, ctx }) => {
        const row = await loadSample(db, params.accession);
        const read = { kind: 'audit_trail' as const, patientIds: [], recordIds: [row.accession] };
        try {
          requireSampleAccess(row, actor);
        } catch (err) {
          await phi.denied(ctx, actor, read);
          throw err;
        }
        const body = { accession: row.accession, ...(await pageOf((p) => sampleTrailPage(db, row, p), query)) };
        await phi.read(ctx, actor, read);
        ctx.body = body;
      },
    }),
    route({
      method: 'get',
      response: R.auditTrailPage,
      path: '/users/:username/audit-trail',
      summary: `A user account's complete audit trail (enrolment, role changes, credentials, deactivation), ${paged}`,
      tag,
      roles: ['admin'],
      params: userParams,
      query: auditTrailQuery,
      handler: async ({ params, query, ctx }) => {
        if (!(await usernameTaken(db, params.username))) throw problems.notFound(`user ${params.username}`);
        ctx.body = { username: params.username, ...(await page('user', params.username, query)) };
      },
    }),
    route({
      method: 'get',
      response: R.auditTrailPage,
      path: '/patients/:id/audit-trail',
      summary: `A patient's complete audit trail (the record, its care team, retention, summaries), ${paged}`,
      tag,
      roles: ['clinician'],
      access: `${PHI_ACCESS} Each page read is a PHI access event.`,
      params: patientParams,
      query: auditTrailQuery,
      handler: async ({ params, query, actor, ctx }) => {
        await phi.guard(ctx, actor, params.id, 'audit_trail');
        const body = { patientId: params.id, ...(await page('patient', params.id, query)) };
        await phi.read(ctx, actor, { kind: 'audit_trail', patientIds: [params.id], recordIds: [] });
        ctx.body = body;
      },
    }),
  ];
}
