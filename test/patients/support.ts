import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ApiResponse, Platform } from '../helpers/platform';
import type { TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';

export const PATIENTS = '/api/v1/patients';
export const patientUrl = (id: string) => `${PATIENTS}/${id}`;
export const notesUrl = (id: string) => `${patientUrl(id)}/notes`;

/** Letters only, so it is a valid name and unique enough to find in any table it must not reach. */
export function marker(prefix = 'Zq'): string {
  const letters = [...randomBytes(10)].map((b) => String.fromCharCode(97 + (b % 26))).join('');
  return `${prefix}${letters}`;
}

export const minutesAgo = (n: number) => new Date(Date.now() - n * 60_000).toISOString();

export async function createPatient(p: Platform, user: TestUser, body: Record<string, unknown> = {}) {
  const res = await p.api('POST', PATIENTS, {
    key: user.apiKey,
    body: { givenName: 'Ada', familyName: marker(), dateOfBirth: '1980-05-17', ...body },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body as { id: string; givenName: string; familyName: string; dateOfBirth: string; mrn: string | null };
}

export async function addNote(p: Platform, user: TestUser, patientId: string, body: Record<string, unknown> = {}) {
  const res = await p.api('POST', notesUrl(patientId), {
    key: user.apiKey,
    body: {
      subjective: 'Headache for two days',
      objective: 'BP 128/82',
      assessment: 'Tension headache',
      plan: 'Ibuprofen',
      noteTime: minutesAgo(30),
      ...body,
    },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body as { id: string; version: number; contentHash: string; noteTime: string };
}

/** Adds a clinician who is not on the team yet: 201 (adding one already there answers 200, tested on its own). */
export async function addToCareTeam(p: Platform, by: TestUser, patientId: string, who: TestUser) {
  const res = await p.api('POST', `${patientUrl(patientId)}/clinicians`, { key: by.apiKey, body: { username: who.username } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res;
}

/** Every table a patient request may write. */
const TABLES = ['patients', 'patient_clinicians', 'soap_notes', 'summary_jobs', 'summaries', 'audit_events'] as const;

export async function patientTableCounts(): Promise<Record<(typeof TABLES)[number], number>> {
  const { db } = testEnv();
  const entries = await Promise.all(TABLES.map(async (t) => [t, Number((await db(t).count('* as n').first())?.n ?? 0)] as const));
  return Object.fromEntries(entries) as Record<(typeof TABLES)[number], number>;
}

/**
 * Performs a request that must be refused and proves it wrote nothing. Tests in this directory run one at a time,
 * and nothing here works in the background, so counts before and after are comparable.
 */
export async function refused(request: () => Promise<ApiResponse>): Promise<ApiResponse> {
  const before = await patientTableCounts();
  const res = await request();
  assert.deepEqual(await patientTableCounts(), before, `rows written by a refused request: ${JSON.stringify(res.body)}`);
  return res;
}

/** Audit events about these entities, oldest first. */
export async function auditOf(entityIds: string[]) {
  return testEnv()
    .db('audit_events')
    .whereIn('entity_id', entityIds)
    .orderBy('seq')
    .select('seq', 'actor', 'action', 'entity_type', 'entity_id', 'details');
}

/** The whole audit trail as text, to prove a value never reached it. */
export async function auditText(): Promise<string> {
  const rows = await testEnv().db('audit_events').select('actor', 'action', 'entity_type', 'entity_id', 'details');
  return JSON.stringify(rows);
}
