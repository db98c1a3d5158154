import type { Knex } from 'knex';

const item = (id: string, clause: string, lookFor: string, keywords: string[]) => ({ id, clause, lookFor, keywords });

const PURPOSE = item('purpose-scope', 'ISO/IEC 17025:2017 8.3.2', 'A stated purpose and the scope the document applies to', ['purpose', 'scope']);
const RESPONSIBILITIES = item('responsibilities', 'ISO 13485:2016 5.5.1', 'Responsibilities and authorities named by role', ['responsib']);
const RECORDS = item('records', 'ISO/IEC 17025:2017 8.4', 'Which records are kept, where, and for how long', ['record', 'retention', 'retain']);
const AUDIT_TRAIL = item(
  'audit-trail',
  '21 CFR 11.10(e)',
  'Secure, computer-generated, time-stamped audit trails of the creation, change and deletion of electronic records',
  ['audit trail'],
);
const SIGNATURES = item(
  'e-signatures',
  '21 CFR 11.50, 11.70',
  'Electronic signatures showing printed name, date and time and meaning, linked to the record they sign',
  ['electronic signature', 'e-signature'],
);
const TRAINING = item('training', 'ISO/IEC 17025:2017 6.2.5', 'People are trained on the document before they work to it', ['training', 'trained']);
const REVIEW = item('periodic-review', 'ISO 13485:2016 4.2.4', 'Periodic review and controlled revision of the document', ['review', 'revision']);

/** The checklists a lab starts with; `other` has none until document control or QA configures one. */
export const SEEDED_CHECKLISTS: Record<string, ReturnType<typeof item>[]> = {
  sop: [PURPOSE, RESPONSIBILITIES, RECORDS, AUDIT_TRAIL, SIGNATURES, TRAINING, REVIEW],
  work_instruction: [PURPOSE, RESPONSIBILITIES, RECORDS, TRAINING, REVIEW],
  policy: [PURPOSE, RESPONSIBILITIES, REVIEW],
  manual: [PURPOSE, RESPONSIBILITIES, RECORDS, REVIEW],
  specification: [PURPOSE, RECORDS, REVIEW],
  form: [PURPOSE, RECORDS],
};

/**
 * The advisory compliance pre-check of submitted document versions: a versioned checklist per document type (each
 * change a new version, none ever changed or deleted), and per version the findings, what was dropped and why, and
 * their provenance.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table precheck_checklists (
      doc_type text not null,
      version integer not null check (version > 0),
      items jsonb not null check (jsonb_typeof(items) = 'array'),
      created_by uuid references users(id),
      created_at timestamptz not null default now(),
      primary key (doc_type, version)
    );
    create table document_prechecks (
      workflow_id text primary key,
      document_version_id uuid not null unique references document_versions(id),
      content_hash text not null,
      doc_type text not null,
      checklist_version integer,
      stage text not null default 'running' check (stage in ('running', 'done', 'failed')),
      failure text,
      source text,
      ai_generated boolean,
      model text,
      prompt_version text,
      prompt_hash text,
      parameters jsonb,
      attempts jsonb not null default '[]',
      fallback_used boolean,
      findings jsonb not null default '[]',
      dropped jsonb not null default '[]',
      started_at timestamptz not null default now(),
      completed_at timestamptz
    );
  `);
  for (const [docType, items] of Object.entries(SEEDED_CHECKLISTS)) {
    await knex('precheck_checklists').insert({ doc_type: docType, version: 1, items: JSON.stringify(items) });
  }
  // A checklist version, once written, is what findings were judged against: never changed, never removed.
  await knex.raw(`
    create trigger precheck_checklists_append_only before update or delete on precheck_checklists
      for each row execute function append_only_refuse_change();
    create trigger precheck_checklists_no_truncate before truncate on precheck_checklists
      for each statement execute function append_only_refuse_change();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists document_prechecks, precheck_checklists');
}
