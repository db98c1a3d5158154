import { z } from 'zod';

/**
 * What the routes answer, for route specs' `response` and the OpenAPI document. Each names the fields clients rely
 * on; records are open objects (`looseObject`): a field added later is not a break, a named field that changes type
 * or disappears fails test/api/openapi-conformance.test.ts.
 */
const record = z.looseObject;
const timestamp = z.string().describe('ISO 8601 instant');
const nullableTime = timestamp.nullable();

/** A page of a list with limit and offset. */
export const page = <T extends z.ZodType>(item: T) => z.object({ limit: z.int(), offset: z.int(), items: z.array(item) });
/** A whole list. */
export const list = <T extends z.ZodType>(item: T) => record({ items: z.array(item) });

export const auditEvent = record({ action: z.string(), actor: z.string().nullable() });
export const changes = z.array(record({ field: z.string() })).describe('each changed field with its old and new value');

// identity
export const actorAnswer = record({ userId: z.string(), username: z.string(), printedName: z.string(), roles: z.array(z.string()) });
export const userAnswer = record({ id: z.string(), username: z.string(), roles: z.array(z.string()) });
export const userView = z.object({
  id: z.string(),
  username: z.string(),
  printedName: z.string(),
  email: z.string(),
  roles: z.array(z.string()),
  active: z.boolean(),
  createdAt: z.string(),
  version: z.string().describe('send it back to refuse a stale change'),
});
export const userList = z.object({ items: z.array(userView), total: z.int(), limit: z.int(), offset: z.int() });
export const signedUserChange = userView.loose().extend({
  changes,
  revokedKeys: z.int().optional(),
  closedSessions: z.int().optional(),
  handedOver: z.unknown().optional().describe('deactivation: the open work handed over in each process'),
});
export const createdUser = userAnswer.extend({
  apiKey: z.string().describe('shown this once'),
  enrolment: z.object({ emailedTo: z.string(), expiresAt: z.string() }),
});
export const editedUser = z.object({
  id: z.string(),
  username: z.string(),
  printedName: z.string(),
  email: z.string(),
  roles: z.array(z.string()),
  active: z.boolean(),
  changes,
});
export const apiKey = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  replacedBy: z.string().nullable(),
  state: z.string(),
});
export const newApiKey = apiKey.extend({ key: z.string().describe('shown this once') });
export const rotatedApiKey = newApiKey.extend({ previous: apiKey.describe('the old key, working until the overlap ends') });
export const enrolmentIssued = z.object({ username: z.string(), emailedTo: z.string(), expiresAt: z.string() });
export const auditVerdict = record({ ok: z.boolean(), events: z.int().optional() }).describe('a broken chain is a verdict too: ok false naming the first broken link');
export const preferences = record({ timeZone: z.string().nullable(), digest: z.boolean() });

// documents
export const documentRow = record({ id: z.string(), number: z.string(), title: z.string(), doc_type: z.string() });
export const documentListItem = record({
  number: z.string(),
  title: z.string(),
  doc_type: z.string(),
  latest_version: z.int().nullable(),
  latest_state: z.string().nullable(),
  effective_version: z.int().nullable(),
});
export const documentList = z.object({ total: z.int(), limit: z.int(), offset: z.int(), items: z.array(documentListItem) });
export const documentWithVersions = documentRow.extend({ versions: z.array(record({ version: z.int(), state: z.string() })) });
export const editedDocument = documentRow.extend({ changes });
export const versionRow = record({ version: z.int(), state: z.string() });
export const newVersion = z.object({ number: z.string(), version: z.int(), contentHash: z.string(), state: z.string() });
export const versionState = record({ number: z.string(), version: z.int(), state: z.string() });
export const documentRunState = record({
  workflowId: z.string(),
  documentNumber: z.string(),
  version: z.int(),
  state: z.string(),
  round: z.int(),
  contentHash: z.string(),
  stages: z.array(record({ name: z.string(), status: z.string(), slots: z.array(record({ assignee: record({ kind: z.string() }) })) })),
}).describe("the run's state once it accepted the action");
export const submitted = z.object({ workflowId: z.string(), runId: z.string(), state: z.literal('in_review'), location: z.string() });
export const signatureRow = record({
  round: z.int(),
  username: z.string(),
  printed_name: z.string(),
  meaning: z.string(),
  signed_at: z.string(),
  content_hash: z.string(),
  void: z.boolean(),
});
export const routingTemplate = record({ docType: z.string(), stages: z.array(record({})) });

// inbox and operations
export const task = record({
  id: z.string(),
  kind: z.string(),
  title: z.string(),
  state: z.string(),
  entity_type: z.string(),
  entity_id: z.string(),
  workflow_id: z.string().nullable(),
  due_at: nullableTime,
  assignee_user: z.string().nullable(),
  assignee_role: z.string().nullable(),
});
export const notification = record({ id: z.string(), kind: z.string(), title: z.string(), body: z.string(), link: z.string().nullable(), created_at: timestamp, read_at: nullableTime });
export const runOverview = record({
  workflowId: z.string(),
  runId: z.string(),
  type: z.string(),
  status: z.string(),
  taskQueue: z.string(),
  startTime: nullableTime,
  closeTime: nullableTime,
  historyLength: z.int(),
  stage: z.string().nullable(),
  searchAttributes: z.record(z.string(), z.unknown()),
  pendingActions: z.array(record({ action: z.string(), by: z.array(z.string()) })),
});
export const cancelRequested = z.object({ workflowId: z.string(), status: z.literal('cancel_requested') });

// CAPA
export const capaStarted = record({ number: z.string(), workflowId: z.string(), stage: z.literal('initiated'), location: z.string() });
export const capaRow = record({
  number: z.string(),
  title: z.string(),
  stage: z.string(),
  outcome: z.string().nullable(),
  round: z.int(),
  owner: z.string().nullable(),
  assignees: z.array(z.string()),
  workflow_id: z.string(),
});
export const capaView = record({
  number: z.string(),
  workflowId: z.string(),
  title: z.string(),
  stage: z.string(),
  outcome: z.string().nullable(),
  assignees: z.array(z.string()),
  live: z.boolean(),
});
export const capaState = record({
  workflowId: z.string(),
  number: z.string(),
  title: z.string(),
  rev: z.int(),
  stage: z.string(),
  outcome: z.string().nullable(),
  round: z.int(),
  sources: z.array(record({ type: z.string(), id: z.string() })),
  initiatedBy: z.string(),
});
export const capaAudit = z.object({ number: z.string(), events: z.array(auditEvent) });
export const handedOver = record({});

// sample intake
export const sampleStarted = z.object({ accession: z.string(), workflowId: z.string(), state: z.literal('expected'), location: z.string() });
export const sampleRow = record({
  accession: z.string(),
  source: z.string(),
  sample_type: z.string(),
  priority: z.string(),
  state: z.string(),
  requested_tests: z.array(z.string()),
  workflow_id: z.string(),
});
export const sampleView = record({
  accession: z.string(),
  workflowId: z.string(),
  source: z.string(),
  sampleType: z.string(),
  priority: z.string(),
  state: z.string(),
  requestedTests: z.array(z.string()),
  rejectedTests: z.array(z.string()),
  collectedAt: nullableTime,
  receivedAt: nullableTime,
  live: z.boolean(),
  orderingProvider: z.object({ username: z.string(), printedName: z.string() }).nullable().describe('the requisition’s ordering provider'),
});
export const sampleOrderingProvider = z.object({
  accession: z.string(),
  orderingProvider: z.object({ username: z.string(), printedName: z.string() }),
  previous: z.object({ username: z.string() }).nullable(),
  changed: z.boolean().describe('false when the sample already named this provider (nothing written)'),
  criticalCalls: z.array(z.string()).describe('the open critical calls of the sample that now name this provider'),
});
export const custody = z.object({
  accession: z.string(),
  items: z.array(record({ accession: z.string(), event: z.string(), actor: z.string(), occurred_at: timestamp })),
});
export const batch = record({ batchId: z.string() });
export const newSource = z.object({ name: z.string(), secret: z.string().describe('the HMAC secret, shown this once') });
export const heldOrder = record({
  id: z.string(),
  state: z.string(),
  /** A release: what became of the ordering provider (`kept_existing`: the sample a later delivery registered keeps its own). */
  orderingProvider: z
    .object({ outcome: z.enum(['registered', 'set', 'unchanged', 'kept_existing', 'not_given']), current: z.string().nullable() })
    .optional(),
});
export const sampleCatalogue = z.object({
  sampleTypes: z.array(record({ code: z.string(), name: z.string(), active: z.boolean() })),
  tests: z.array(record({ code: z.string() })),
});

// ERP sync and suppliers
export const erpRun = record({ id: z.string(), state: z.string() });
export const erpCursor = record({ entity: z.string() });
export const deadLetter = record({ id: z.string(), state: z.string() });
export const supplierQualification = record({ supplier: z.string() });

// scheduled work and backups
export const schedule = record({
  scheduleId: z.string(),
  description: z.string().nullable(),
  paused: z.boolean(),
  spec: record({ timezone: z.string(), calendars: z.array(z.unknown()), intervals: z.array(z.unknown()) }),
  workflowType: z.string().nullable(),
  overlap: z.string(),
  nextActionTimes: z.array(z.string()),
  recentActions: z.array(record({ scheduledAt: z.string(), workflowId: z.string() })),
});
export const scheduleList = z.object({ schedules: z.array(schedule) });
export const triggered = z.object({ scheduleId: z.string(), status: z.literal('triggered') });
export const backfillRequested = z.object({ scheduleId: z.string(), status: z.literal('backfill_requested'), start: z.string(), end: z.string() });
export const backupStarted = z.object({ workflowId: z.string(), status: z.literal('started') });
export const backup = record({
  id: z.string(),
  state: z.string(),
  trigger: z.string(),
  workflowId: z.string().nullable(),
  dump: record({ path: z.string().nullable(), bytes: z.number().nullable(), sha256: z.string().nullable() }),
  encrypted: z.boolean().nullable(),
  legalHold: z.boolean(),
});
export const backupList = z.object({
  backups: z.array(backup),
  restoreDrills: z.array(record({ id: z.string(), backupId: z.string().nullable(), ok: z.boolean().nullable() })),
});

// patients and summaries (PHI)
export const patient = record({
  id: z.string(),
  givenName: z.string(),
  familyName: z.string(),
  dateOfBirth: z.string(),
  mrn: z.string().nullable(),
  sex: z.string().nullable(),
  createdBy: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  legalHold: z.boolean(),
});
export const cursorPage = <T extends z.ZodType>(item: T) =>
  record({ items: z.array(item), total: z.int(), limit: z.int(), next: z.string().nullable().optional() });
export const retiredPatient = record({
  patientId: z.string(),
  status: z.literal('retired'),
  retiredAt: z.string(),
  retainUntil: z.string(),
  signedSummaries: z.int(),
  detail: z.string(),
}).describe('a patient with signed summaries is retired and kept, not deleted');
export const retention = record({ patientId: z.string(), retiredAt: nullableTime, retainUntil: nullableTime, legalHold: z.boolean() });
export const accessLog = record({
  patientId: z.string(),
  items: z.array(record({ id: z.string(), at: timestamp, username: z.string().nullable(), outcome: z.string(), kind: z.string() })),
});
export const careTeam = record({
  patientId: z.string(),
  clinicians: z.array(record({ username: z.string(), printedName: z.string(), active: z.boolean(), access: z.string() })),
  pending: z.array(record({ id: z.string(), location: z.string() })),
});
export const breakGlassList = z.object({ patientId: z.string(), items: z.array(record({})) });
export const note = record({
  id: z.string(),
  patientId: z.string(),
  subjective: z.string(),
  objective: z.string(),
  assessment: z.string(),
  plan: z.string(),
  noteTime: timestamp,
  author: z.string(),
  contentHash: z.string(),
  version: z.int(),
});
export const noteVersions = z.object({ patientId: z.string(), noteId: z.string(), versions: z.array(record({ version: z.int() })) });
export const summaryJob = record({
  jobId: z.string(),
  patientId: z.string(),
  stage: z.string(),
  round: z.int(),
  providers: z.array(z.string()),
  provider: z.string().nullable(),
  requestedAt: nullableTime,
  finishedAt: nullableTime,
  attempts: z.array(record({ round: z.int(), provider: z.string(), outcome: z.string() })),
});
export const summaryReviewed = z.object({ job: summaryJob, stage: z.string(), round: z.int() });
export const summaryJobs = record({ items: z.array(record({ jobId: z.string(), stage: z.string() })), limit: z.int(), offset: z.int() });
export const summary = record({
  id: z.string(),
  jobId: z.string(),
  round: z.int(),
  status: z.string(),
  text: z.string(),
  generatedText: z.string(),
  aiGenerated: z.boolean(),
  contentHash: z.string(),
  provenance: record({}),
});

export const plainText = z.string();

/** A complete copy of a record (api/exports/): content, state, signatures manifested, the whole trail. */
export const exportedRecord = record({
  kind: z.string(),
  state: z.string().nullable(),
  signatures: z.array(record({ printedName: z.string(), meaning: z.string() })),
  trail: z.array(auditEvent),
});
/** The same copy as PDF/A-2b or CSV. */
export const exportFiles = { 'application/pdf': z.string().describe('PDF/A-2b, binary'), 'text/csv': z.string() };
/** A bulk export as its requester sees it: its progress, and the file's link once written. */
export const bulkExport = record({
  id: z.string(),
  workflowId: z.string(),
  kind: z.enum(['capas', 'samples']),
  period: z.string(),
  format: z.enum(['pdf', 'csv', 'json']),
  state: z.enum(['running', 'completed', 'failed', 'expired']),
  total: z.int(),
  expiresAt: z.string().nullable().describe('when the file is deleted (BULK_EXPORT_RETENTION after it was written)'),
  expiredAt: z.string().nullable(),
  done: z.int(),
  error: z.string().nullable(),
  download: z.string().nullable().describe('the file, once written'),
});
export const bulkExportStarted = record({ id: z.string(), workflowId: z.string(), state: z.literal('running'), total: z.int(), location: z.string() });
/** The bundle as JSON: every record's copy as the single export answers it. */
export const bulkExportBundle = record({ kind: z.literal('bulk_export'), total: z.int(), records: z.array(exportedRecord) });
/** One page of a record's audit trail, oldest first; `next` is the `after` of the next page, null at the end. */
export const auditTrailPage = record({ items: z.array(auditEvent), next: z.int().nullable() });

// training
export const keysetPage = <T extends z.ZodType>(item: T) =>
  record({ items: z.array(item), limit: z.int(), next: z.string().nullable().describe('the cursor of the next page (after=…), null on the last') });
export const trainingAssignment = record({
  workflowId: z.string(),
  username: z.string(),
  document: z.string(),
  version: z.int(),
  state: z.string(),
  dueAt: timestamp,
  closedAt: nullableTime,
  overdue: z.boolean(),
});
export const trainingRunState = record({
  workflowId: z.string(),
  username: z.string(),
  documentNumber: z.string(),
  version: z.int(),
  state: z.string(),
  dueAt: nullableTime,
  completedAt: nullableTime,
});
export const documentMatrixRow = record({
  username: z.string(),
  roles: z.array(z.string()),
  effectiveVersion: z.int().nullable(),
  assignmentState: z.string().nullable(),
  lastSigned: z.int().nullable(),
});
export const roleMatrixRow = record({
  username: z.string(),
  documents: z.array(record({ document: z.string(), effectiveVersion: z.int(), assignmentState: z.string().nullable(), lastSigned: z.int().nullable() })),
});
export const trainingRequirement = record({
  document: z.string(),
  roles: z.array(z.string()),
  due: z.string(),
  reminderBefore: z.string(),
  retrainOnRevision: z.boolean(),
  grace: z.string(),
  active: z.boolean(),
});
export const governingDocuments = record({ activity: z.string(), documents: z.array(z.string()) });

const coaIssue = z.object({ field: z.string(), code: z.string() });
export const coaExtraction = record({
  id: z.string(),
  workflowId: z.string(),
  sampleId: z.string().nullable(),
  stage: z.string(),
  /** The fields that passed validation (values written in the certificate); refused ones are only in `issues`. */
  proposal: z.record(z.string(), z.unknown()).nullable(),
  issues: z.array(coaIssue),
  provenance: record({
    source: z.string().nullable(),
    aiGenerated: z.boolean().nullable(),
    model: z.string().nullable(),
    promptVersion: z.string().nullable(),
    promptHash: z.string().nullable(),
    attempts: z
      .array(record({ provider: z.string(), outcome: z.string() }))
      .describe("every provider call in order (each try with its output budget), then the rules where they proposed"),
  }),
  confirmed: record({ fields: z.record(z.string(), z.unknown()), corrections: z.array(z.unknown()), by: z.string(), at: z.string() }).nullable(),
  rejected: record({ by: z.string(), at: z.string(), reason: z.string() }).nullable(),
});
/** An incoming inspection's recorded values: the current version and where it came from, and every earlier one. */
const inspectionValues = record({
  version: z.int(),
  supplier: z.string(),
  product: z.string(),
  lotNumber: z.string(),
  expiryDate: z.string(),
  parameters: z.array(record({ name: z.string(), result: z.string(), specification: z.string() })),
  source: record({ coaExtractionId: z.string(), confirmedBy: z.string(), confirmedAt: z.string(), text: z.string() }),
});
export const incomingInspection = record({
  sampleId: z.string(),
  accession: z.string(),
  recorded: inspectionValues.nullable().describe('null until a CoA extraction of this sample is confirmed'),
  versions: z.array(inspectionValues),
});
// competence and authorisation
export const activityRequirements = record({ activity: z.string(), competency: z.boolean(), authorisation: z.boolean() });
export const competencyAssessment = record({
  id: z.string(),
  username: z.string(),
  activity: z.string(),
  scope: z.string(),
  method: z.string(),
  outcome: z.string(),
  assessedAt: timestamp,
  nextDueAt: nullableTime,
  assessor: z.string(),
});
export const authorisation = record({
  id: z.string(),
  username: z.string(),
  activity: z.string(),
  scope: z.string(),
  validFrom: timestamp,
  validUntil: nullableTime,
  grantedBy: z.string(),
  state: z.string().describe('active, pending (starts later), expired, revoked or renewed'),
  signature: record({ printedName: z.string(), meaning: z.string(), signedAt: timestamp, contentHash: z.string() }).nullable(),
});
export const competenceRecord = record({ username: z.string(), assessments: z.array(competencyAssessment), authorisations: z.array(authorisation) });

// document pre-check
const checklistItem = record({ id: z.string(), clause: z.string(), lookFor: z.string(), keywords: z.array(z.string()) });
export const precheckChecklist = record({
  docType: z.string(),
  version: z.int(),
  items: z.array(checklistItem),
  createdBy: z.string().nullable(),
  createdAt: timestamp,
});
export const precheckChecklistHistory = record({ docType: z.string(), versions: z.array(precheckChecklist) });
export const documentPrecheck = record({
  workflowId: z.string(),
  stage: z.enum(['running', 'done', 'failed']),
  failure: z.string().nullable(),
  /** Always true: findings are advice to reviewers and decide nothing. */
  advisory: z.literal(true),
  contentHash: z.string(),
  checklist: record({ docType: z.string(), version: z.int().nullable() }),
  findings: z.array(
    record({
      itemId: z.string(),
      clause: z.string(),
      status: z.enum(['met', 'not_met', 'unclear']),
      /** Copied verbatim from the version's text. */
      evidence: z.string().nullable(),
      comment: z.string(),
    }),
  ),
  /** Findings left out because their quote is not in the text (or they named no checklist item). */
  dropped: record({ count: z.int(), items: z.array(record({ itemId: z.string().nullable(), reason: z.string() })) }),
  provenance: record({
    source: z.string().nullable(),
    aiGenerated: z.boolean().nullable(),
    model: z.string().nullable(),
    promptVersion: z.string().nullable(),
    promptHash: z.string().nullable(),
    fallbackUsed: z.boolean().nullable(),
    attempts: z.array(record({ provider: z.string(), outcome: z.string(), model: z.string().nullable() })),
  }),
  startedAt: timestamp,
  completedAt: nullableTime,
});
