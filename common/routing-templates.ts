import { assigneeKey, type AssigneeRef } from './assignees';
import type { StageRule } from './document-approval';
import type { Role } from './roles';
import { requiredApprovals } from './routing-rules';

/** The document types labflow controls; each has one routing template. */
export const DOC_TYPES = ['sop', 'policy', 'work_instruction', 'form', 'specification', 'manual', 'other'] as const;
export type DocType = (typeof DOC_TYPES)[number];

/** One stage a document type's review goes through, and who may sign it. */
export interface TemplateStage {
  name: string;
  /** A named assignee must hold one of these roles; a role assignee must be one of them. */
  roles: Role[];
  /** A required stage must be in every routing; an optional one may be left out. */
  required: boolean;
  /** The fewest approvals the stage's rule may ask for (a stage of one signer when 1). */
  minApprovals: number;
}

export interface RoutingTemplate {
  docType: DocType;
  stages: TemplateStage[];
  /** Document control signs last: the routing's final stage is the template's document-control stage. */
  documentControlFinal: boolean;
}

export interface RoutingProblem {
  field: string;
  detail: string;
}

const sameName = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();
const list = (items: readonly string[]) => items.join(', ');

/** The template's stage of this name (names compare without case or surrounding spaces). */
export function templateStage(template: RoutingTemplate, name: string): TemplateStage | undefined {
  return template.stages.find((stage) => sameName(stage.name, name));
}

/** What is wrong with a template as an editor sent it; empty when it can be stored. */
export function templateProblems(template: Omit<RoutingTemplate, 'docType'>): RoutingProblem[] {
  const problems: RoutingProblem[] = [];
  const { stages } = template;
  if (!stages.some((stage) => stage.required)) problems.push({ field: 'stages', detail: 'a template needs at least one required stage' });
  stages.forEach((stage, i) => {
    if (stages.findIndex((other) => sameName(other.name, stage.name)) !== i) {
      problems.push({ field: `stages[${i}].name`, detail: `stage "${stage.name}" appears twice` });
    }
    if (new Set(stage.roles).size !== stage.roles.length) {
      problems.push({ field: `stages[${i}].roles`, detail: `stage "${stage.name}" lists a role twice` });
    }
  });
  if (template.documentControlFinal) {
    const last = stages[stages.length - 1];
    if (!last || !last.required || last.roles.length !== 1 || last.roles[0] !== 'document_control') {
      problems.push({
        field: 'documentControlFinal',
        detail: 'with documentControlFinal the last stage must be required and signed by document_control only',
      });
    }
  }
  return problems;
}

/** A routing stage as submitted, its named users with the roles Postgres gives them now. */
export interface RoutedStage {
  name: string;
  rule: StageRule;
  assignees: AssigneeRef[];
}

/**
 * What keeps a submitted routing from fitting its document type's template, in words a user can act on: stages
 * the template does not have or requires, stages out of order, assignees who do not hold the stage's role, too
 * few approvals, the same person named in two stages (one person signs at most one stage per round), and a
 * final stage that is not document control where the template asks for it. Empty when it fits.
 */
export function templateRoutingProblems(
  routing: RoutedStage[],
  template: RoutingTemplate,
  rolesOf: (userId: string) => readonly Role[],
): RoutingProblem[] {
  const problems: RoutingProblem[] = [];
  const type = template.docType;
  const names = list(template.stages.map((stage) => `"${stage.name}"`));
  let lastMatched = -1;
  const matched: number[] = [];
  routing.forEach((stage, i) => {
    const at = template.stages.findIndex((t) => sameName(t.name, stage.name));
    if (at < 0) {
      problems.push({ field: `routing[${i}].name`, detail: `a ${type} has no stage "${stage.name}"; its template's stages are ${names}` });
      return;
    }
    if (matched.includes(at)) {
      problems.push({ field: `routing[${i}].name`, detail: `stage "${stage.name}" appears twice` });
      return;
    }
    if (at < lastMatched) {
      problems.push({
        field: `routing[${i}].name`,
        detail: `stage "${stage.name}" comes before "${template.stages[lastMatched].name}" in a ${type}'s template`,
      });
    }
    lastMatched = Math.max(lastMatched, at);
    matched.push(at);
    const rule = template.stages[at];
    stage.assignees.forEach((assignee, j) => {
      const field = `routing[${i}].assignees[${j}]`;
      if (assignee.kind === 'role') {
        if (!rule.roles.includes(assignee.role)) {
          problems.push({
            field,
            detail: `role ${assignee.role} may not sign stage "${rule.name}" of a ${type} (roles allowed: ${list(rule.roles)})`,
          });
        }
      } else if (!rolesOf(assignee.userId).some((role) => rule.roles.includes(role))) {
        problems.push({
          field,
          detail: `${assignee.username} holds none of the roles stage "${rule.name}" of a ${type} needs (${list(rule.roles)})`,
        });
      }
    });
    if (stage.assignees.length && requiredApprovals(stage.rule, stage.assignees.length) < rule.minApprovals) {
      problems.push({
        field: `routing[${i}].rule`,
        detail: `stage "${rule.name}" of a ${type} needs at least ${rule.minApprovals} approvals`,
      });
    }
  });
  template.stages.forEach((rule, at) => {
    if (rule.required && !matched.includes(at)) {
      problems.push({ field: 'routing', detail: `a ${type} must go through stage "${rule.name}"` });
    }
  });
  if (template.documentControlFinal) {
    const last = routing[routing.length - 1];
    const final = template.stages[template.stages.length - 1];
    if (last && !(final && sameName(last.name, final.name))) {
      problems.push({ field: `routing[${routing.length - 1}].name`, detail: `document control signs a ${type} last` });
    }
  }
  const stageOf = new Map<string, number>();
  routing.forEach((stage, i) =>
    stage.assignees.forEach((assignee, j) => {
      if (assignee.kind !== 'user') return;
      const first = stageOf.get(assignee.userId);
      if (first === undefined) stageOf.set(assignee.userId, i);
      else if (first !== i) {
        problems.push({
          field: `routing[${i}].assignees[${j}]`,
          detail: `${assigneeKey(assignee)} is named in stages "${routing[first].name}" and "${stage.name}"; one person signs at most one stage per round`,
        });
      }
    }),
  );
  return problems;
}
