import { templateProblems } from '../../common/routing-templates';
import { findRoutingTemplate, listRoutingTemplates, saveRoutingTemplate } from '../../db/routing-templates';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { docTypeParams, routingTemplateBody } from '../schemas/documents';

const tag = 'documents';

/** The routing template of each document type: what every submission's routing must fit. */
export function routingTemplateRoutes({ db }: ApiDeps): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/routing-templates',
      response: R.list(R.routingTemplate),
      summary: 'The routing template of every document type',
      tag,
      roles: 'any',
      handler: async ({ ctx }) => {
        ctx.body = { items: await listRoutingTemplates(db) };
      },
    }),
    route({
      method: 'get',
      path: '/routing-templates/:docType',
      response: R.routingTemplate,
      summary: "A document type's routing template: required stages, the roles that may sign each, document control last",
      tag,
      roles: 'any',
      params: docTypeParams,
      handler: async ({ params, ctx }) => {
        const template = await findRoutingTemplate(db, params.docType);
        if (!template) throw problems.notFound(`a routing template for ${params.docType}`);
        ctx.body = template;
      },
    }),
    route({
      method: 'put',
      path: '/routing-templates/:docType',
      response: R.routingTemplate.extend({ changes: R.changes }), problems: [422],
      summary: "Replace a document type's routing template (document control or admin); audited with old and new values",
      tag,
      roles: ['document_control', 'admin'],
      params: docTypeParams,
      body: routingTemplateBody,
      handler: async ({ params, body, actor, ctx }) => {
        const errors = templateProblems(body);
        if (errors.length) {
          throw problems.unprocessable('invalid-template', errors.map((e) => e.detail).join('; '), {
            errors: errors.map((e) => ({ ...e, field: `body.${e.field.replace(/\[(\d+)\]/g, '.$1')}` })),
          });
        }
        const { template, changes } = await saveRoutingTemplate(db, actor, { docType: params.docType, ...body });
        ctx.body = { ...template, changes };
      },
    }),
  ];
}
