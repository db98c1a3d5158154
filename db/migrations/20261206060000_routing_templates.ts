import type { Knex } from 'knex';

type Stage = { name: string; roles: string[]; required: boolean; minApprovals: number };
const stage = (name: string, roles: string[], required = true): Stage => ({ name, roles, required, minApprovals: 1 });
const documentControl = stage('Document control', ['document_control']);

/**
 * The routing each document type starts with. Review and approval are signed by people who hold a reviewing or
 * approving role (never a lab technician alone); SOPs, policies and manuals end with document control, who checks
 * the release before the version becomes effective. Forms, being records of work rather than instructions, need
 * one review. Document control and admins edit these through the API.
 */
const DEFAULTS: { docType: string; stages: Stage[]; documentControlFinal: boolean }[] = [
  {
    docType: 'sop',
    stages: [
      stage('Technical review', ['reviewer', 'lab_director', 'qa_manager']),
      stage('QA approval', ['approver', 'qa_manager']),
      documentControl,
    ],
    documentControlFinal: true,
  },
  {
    docType: 'policy',
    stages: [stage('Review', ['reviewer', 'qa_manager', 'lab_director']), stage('Approval', ['lab_director', 'qa_manager']), documentControl],
    documentControlFinal: true,
  },
  {
    docType: 'manual',
    stages: [
      stage('Review', ['reviewer', 'qa_manager', 'lab_director']),
      stage('Approval', ['approver', 'qa_manager', 'lab_director']),
      documentControl,
    ],
    documentControlFinal: true,
  },
  {
    docType: 'work_instruction',
    stages: [stage('Review', ['reviewer', 'lab_director', 'qa_manager']), stage('Approval', ['approver', 'qa_manager', 'lab_director'])],
    documentControlFinal: false,
  },
  {
    docType: 'specification',
    stages: [stage('Technical review', ['reviewer', 'lab_director']), stage('QA approval', ['approver', 'qa_manager'])],
    documentControlFinal: false,
  },
  {
    docType: 'form',
    stages: [stage('Review', ['reviewer', 'approver', 'qa_manager', 'lab_director', 'document_control'])],
    documentControlFinal: false,
  },
  {
    docType: 'other',
    stages: [stage('Review', ['reviewer', 'lab_director', 'qa_manager']), stage('Approval', ['approver', 'qa_manager', 'lab_director'])],
    documentControlFinal: false,
  },
];

/** One routing template per document type: the stages a submission must go through and who may sign each. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table routing_templates (
      doc_type text primary key,
      stages jsonb not null check (jsonb_typeof(stages) = 'array' and jsonb_array_length(stages) > 0),
      document_control_final boolean not null default false,
      updated_at timestamptz not null default now(),
      updated_by text not null default 'system'
    );
  `);
  await knex('routing_templates').insert(
    DEFAULTS.map((t) => ({ doc_type: t.docType, stages: JSON.stringify(t.stages), document_control_final: t.documentControlFinal })),
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists routing_templates');
}
