import { z } from 'zod';
import { parseSoapText, SOAP_SECTIONS, type SoapSections } from '../../common/soap-sections';
import { decodeCursor, type Cursor } from '../../db/keyset';
import { PATIENT_SEXES, PATIENT_SORTS, type PatientSort } from '../../db/patients';
import { isoDateTime, username, boundedInt } from './common';

/*
 * Messages name the rule broken, never the value sent: these fields are PHI and problem answers travel to places
 * (client logs, proxies) that must not hold it.
 */

const patientId = z.uuid('not a patient ID (a UUID)');
export const patientParams = z.object({ id: patientId });
export const noteParams = z.object({ id: patientId, noteId: z.uuid('not a note ID (a UUID)') });
export const careTeamMemberParams = z.object({ id: patientId, username });

// Letters (any script), combining marks, spaces, apostrophes, hyphens and periods; no commas, which the name
// search reads as "family, given".
const personName = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200)
  .regex(/^[\p{L}\p{M}][\p{L}\p{M} '’.-]*$/u, 'letters, spaces, apostrophes, hyphens and periods only');

const EARLIEST_BIRTH = '1900-01-01';
/** The date now somewhere on Earth (UTC+14): a baby born "today" in Kiribati is not refused as born tomorrow. */
const latestToday = () => new Date(Date.now() + 14 * 3600_000).toISOString().slice(0, 10);
const dateOfBirth = z.iso
  .date('a date as YYYY-MM-DD')
  .refine((d) => d >= EARLIEST_BIRTH, `must not be before ${EARLIEST_BIRTH}`)
  .refine((d) => d <= latestToday(), 'must not be in the future');

const mrn = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$/, 'letters, digits, ".", "_", "/" and "-", starting with a letter or digit, at most 64');
const sex = z.enum(PATIENT_SEXES);
const address = z.string().trim().min(1, 'must not be empty').max(500);
const phone = z
  .string()
  .trim()
  .regex(/^\+?[0-9][0-9 ()./-]{2,31}$/, 'digits with an optional leading "+", spaces, ".", "/", "-" or parentheses, at most 32');

export const createPatientBody = z.strictObject({
  givenName: personName,
  familyName: personName,
  dateOfBirth,
  mrn: mrn.optional(),
  sex: sex.optional(),
  address: address.optional(),
  phone: phone.optional(),
});

/** A partial change; null clears an optional field. */
export const updatePatientBody = z
  .strictObject({
    givenName: personName.optional(),
    familyName: personName.optional(),
    dateOfBirth: dateOfBirth.optional(),
    mrn: mrn.nullable().optional(),
    sex: sex.nullable().optional(),
    address: address.nullable().optional(),
    phone: phone.nullable().optional(),
  })
  .refine((b) => Object.values(b).some((v) => v !== undefined), { message: 'name at least one field to change' });

/** "family_name" ascending, "-family_name" descending. */
function sortParam<const S extends string>(fields: readonly S[], fallback: S | `-${S}`) {
  const values = [...fields, ...fields.map((f) => `-${f}`)] as [string, ...string[]];
  return z
    .enum(values)
    .default(fallback)
    .transform((v) => ({ name: v, field: v.replace(/^-/, '') as S, desc: v.startsWith('-') }));
}

/** A keyset cursor as a query parameter: only cursors this API handed out. */
export const cursorParam = z
  .string()
  .transform((text, ctx) => {
    const cursor = decodeCursor(text);
    if (!cursor) {
      ctx.addIssue({ code: 'custom', message: 'not a cursor this API handed out; use nextCursor from a previous page' });
      return z.NEVER;
    }
    return cursor;
  })
  .optional();

/** A cursor continues the listing it came from; under another sort its position means nothing. */
function cursorMatchesSort<T extends { cursor?: Cursor; sort: { name: string } }>(query: T, ctx: z.RefinementCtx) {
  if (query.cursor && query.cursor.sort !== query.sort.name) {
    ctx.addIssue({ code: 'custom', path: ['cursor'], message: 'this cursor belongs to another sort order; start again without it' });
  }
}

const limit = z.coerce.number().int().min(1).max(100).default(20);

export const listPatientsQuery = z
  .strictObject({
    q: z.string().trim().min(1, 'must not be empty').max(200).optional(),
    limit,
    cursor: cursorParam,
    sort: sortParam<PatientSort>(PATIENT_SORTS, 'family_name'),
  })
  .superRefine(cursorMatchesSort);

export const listNotesQuery = z
  .strictObject({ limit, cursor: cursorParam, sort: sortParam(['note_time'] as const, '-note_time') })
  .superRefine(cursorMatchesSort);

/**
 * Who joins the care team. An admin's addition waits for a clinician of the team to confirm it, unless the admin
 * uses break-glass access, which needs a reason (audited; the privacy officers are alerted).
 */
export const addClinicianBody = z.strictObject({
  username,
  breakGlass: z
    .strictObject({
      reason: z.string().trim().min(10, 'say why the care team could not confirm in time (at least 10 characters)').max(2000),
    })
    .optional(),
});
export const careTeamRequestParams = z.object({ id: patientId, requestId: z.uuid('not a care-team request ID (a UUID)') });

/** A legal hold on the patient's records: it blocks retirement and purge until it is lifted. */
export const legalHoldBody = z.discriminatedUnion('hold', [
  z.strictObject({ hold: z.literal(true), reason: z.string().trim().min(3, 'name the matter the hold is for').max(500) }),
  z.strictObject({ hold: z.literal(false) }),
]);

/** How far ahead of the server's clock a note time may be, for devices whose clocks run a little fast. */
export const NOTE_CLOCK_SKEW_MS = 5 * 60_000;
const section = z.string().max(20_000);
const noteTime = isoDateTime
  .refine((t) => Date.parse(t) >= Date.parse('1900-01-01T00:00:00Z'), 'must not be before 1900')
  .refine((t) => Date.parse(t) <= Date.now() + NOTE_CLOCK_SKEW_MS, 'must not be in the future');

const noteFields = {
  subjective: section.optional(),
  objective: section.optional(),
  assessment: section.optional(),
  plan: section.optional(),
  text: z.string().max(80_000).optional(),
  noteTime,
};

export interface ParsedNote {
  sections: SoapSections;
  noteTime: Date;
  version?: number;
}

/**
 * Either the four sections or free text with S/O/A/P headings (parsed here), never both; at least one section
 * with text. The time keeps millisecond precision, which is what the content hash is computed over.
 */
function toNote(
  b: Partial<Record<(typeof SOAP_SECTIONS)[number] | 'text', string>> & { noteTime: string; version?: number },
  ctx: z.RefinementCtx,
) {
  const given = SOAP_SECTIONS.filter((s) => b[s] !== undefined);
  let sections: SoapSections;
  if (b.text !== undefined) {
    if (given.length) {
      ctx.addIssue({ code: 'custom', path: ['text'], message: `send either text or the sections (${given.join(', ')}), not both` });
      return z.NEVER;
    }
    const parsed = parseSoapText(b.text);
    if (!parsed.ok) {
      for (const message of parsed.errors) ctx.addIssue({ code: 'custom', path: ['text'], message });
      return z.NEVER;
    }
    sections = parsed.sections;
  } else {
    sections = Object.fromEntries(SOAP_SECTIONS.map((s) => [s, (b[s] ?? '').trim()])) as SoapSections;
    if (SOAP_SECTIONS.every((s) => sections[s] === '')) {
      ctx.addIssue({
        code: 'custom',
        path: given.length ? [given[0]] : [],
        message: 'a note needs text in at least one of subjective, objective, assessment, plan (or text with those headings)',
      });
      return z.NEVER;
    }
  }
  const result: ParsedNote = { sections, noteTime: new Date(Date.parse(b.noteTime)) };
  if (b.version !== undefined) result.version = b.version;
  return result;
}

export const createNoteBody = z.strictObject(noteFields).transform(toNote);
export const updateNoteBody = z.strictObject({ ...noteFields, version: boundedInt(1).optional() }).transform(toNote);

/** The access log has one order, newest first; its cursors say so, like every other list's. */
export const ACCESS_LOG_SORT = '-occurred_at';
const logInstant = isoDateTime
  .refine((t) => Date.parse(t) >= Date.parse('1900-01-01T00:00:00Z'), 'must not be before 1900')
  .refine((t) => Date.parse(t) <= Date.now() + 366 * 24 * 3600_000, 'must not be more than a year ahead')
  .transform((t) => new Date(Date.parse(t)));

/** Who read the patient's record (user), from (inclusive) and to (exclusive) instants, keyset-paged. */
export const accessLogQuery = z
  .strictObject({ user: username.optional(), from: logInstant.optional(), to: logInstant.optional(), limit, cursor: cursorParam })
  .superRefine((query, ctx) => {
    if (query.from && query.to && query.from >= query.to) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be after from' });
    }
    if (query.cursor && query.cursor.sort !== ACCESS_LOG_SORT) {
      ctx.addIssue({ code: 'custom', path: ['cursor'], message: 'this cursor belongs to another listing; start again without it' });
    }
  });
