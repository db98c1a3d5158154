import { extractClinicalTerms, mentionsTerm } from './clinical-terms';
import type { NoteForSummary } from './types';

export const VALIDATION_ISSUE_CODES = [
  'empty',
  'too_short',
  'too_long',
  'missing_section',
  'omitted_medication',
  'omitted_allergy',
  'omitted_problem',
] as const;
export type ValidationIssueCode = (typeof VALIDATION_ISSUE_CODES)[number];

export type TermKind = 'medications' | 'allergies' | 'problems';

/** Stored with the attempt and the summary: codes and counts only, never a term from the notes. */
export interface SummaryValidation {
  ok: boolean;
  issues: { code: ValidationIssueCode; count: number }[];
  coverage: Record<TermKind, { expected: number; found: number }>;
  sections: {
    subjective: boolean;
    objective: boolean;
    assessment: boolean;
    plan: boolean;
    medications: boolean;
    allergies: boolean;
    problems: boolean;
  };
  chars: number;
}

/** A summary that should be read in two minutes is far shorter than this. */
export const DEFAULT_MAX_SUMMARY_CHARS = 20_000;

export interface ValidateOptions {
  /** Default DEFAULT_MAX_SUMMARY_CHARS. */
  maxChars?: number;
  /**
   * Omissions that fail the summary. Default: medications and allergies, whose omission is a safety issue and whose
   * names rarely vary; problems are worded too freely for a rule to judge, so their omission is flagged for the
   * reviewer without failing the attempt.
   */
  failOnOmitted?: TermKind[];
}

/** Headings, list markup and a label line: what a short note's summary may add to its length. */
const STRUCTURE_ALLOWANCE = 1000;

/** A heading line: Markdown (#, bold), "Word:" or the word alone; single letters (S:, O:) only with a colon. */
function heading(words: string, letters = ''): RegExp {
  const forms = [
    `#{1,6}\\s*(?:${words})\\b[^\\n]{0,40}`,
    `(?:\\*\\*|__)\\s*(?:${words})\\b[^\\n]{0,40}`,
    `(?:${words})\\s*:[^\\n]*`,
    `(?:${words})\\s*`,
    ...(letters ? [`(?:${letters})\\s*:[^\\n]*`] : []),
  ];
  return new RegExp(`^[ \\t]*(?:${forms.join('|')})$`, 'im');
}

const SECTION_PATTERNS: Record<keyof SummaryValidation['sections'], RegExp> = {
  subjective: heading('subjective', 's'),
  objective: heading('objective', 'o'),
  assessment: heading('assessment|assessment and plan|assessment/plan', 'a|a/p'),
  plan: heading('plan|assessment and plan|assessment/plan', 'p|a/p'),
  medications: heading('medications?|meds|current medications'),
  allergies: heading('allerg(?:y|ies)'),
  problems: heading('problems?|problem list|diagnos[ie]s'),
};

function minimumChars(notesChars: number): number {
  return Math.min(600, Math.max(120, Math.round(notesChars * 0.05)));
}

function coverageOf(notes: NoteForSummary[], summary: string) {
  const terms = extractClinicalTerms(notes);
  const kinds: TermKind[] = ['medications', 'allergies', 'problems'];
  return Object.fromEntries(
    kinds.map((kind) => {
      const missing = terms[kind].filter((t) => !mentionsTerm(summary, t));
      return [kind, { expected: terms[kind].length, missing }];
    }),
  ) as Record<TermKind, { expected: number; missing: string[] }>;
}

/**
 * Checks a candidate summary before it is stored: the S/O/A/P headings are there, every medication, allergy and
 * problem the notes name appears, and the length is sane (not empty, not absurdly short, not longer than the notes
 * plus room for structure, not over maxChars).
 */
export function validateSummary(notes: NoteForSummary[], summaryText: string, opts: ValidateOptions = {}): SummaryValidation {
  const maxChars = opts.maxChars ?? DEFAULT_MAX_SUMMARY_CHARS;
  const failOn = new Set<TermKind>(opts.failOnOmitted ?? ['medications', 'allergies']);
  const text = summaryText ?? '';
  const chars = text.trim().length;
  const notesChars = notes.reduce(
    (n, note) => n + note.subjective.length + note.objective.length + note.assessment.length + note.plan.length,
    0,
  );
  const issues: SummaryValidation['issues'] = [];
  let ok = true;
  const flag = (code: ValidationIssueCode, count: number, blocking: boolean) => {
    if (count <= 0) return;
    issues.push({ code, count });
    if (blocking) ok = false;
  };

  if (chars === 0) flag('empty', 1, true);
  else if (chars < minimumChars(notesChars)) flag('too_short', 1, true);
  if (chars > maxChars || chars > notesChars + STRUCTURE_ALLOWANCE) flag('too_long', 1, true);

  const sections = Object.fromEntries(
    Object.entries(SECTION_PATTERNS).map(([key, pattern]) => [key, pattern.test(text)]),
  ) as SummaryValidation['sections'];
  flag(
    'missing_section',
    ['subjective', 'objective', 'assessment', 'plan'].filter((s) => !sections[s as keyof typeof sections]).length,
    true,
  );

  const coverage = coverageOf(notes, text);
  flag('omitted_medication', coverage.medications.missing.length, failOn.has('medications'));
  flag('omitted_allergy', coverage.allergies.missing.length, failOn.has('allergies'));
  flag('omitted_problem', coverage.problems.missing.length, failOn.has('problems'));

  const counts = (kind: TermKind) => ({
    expected: coverage[kind].expected,
    found: coverage[kind].expected - coverage[kind].missing.length,
  });
  return {
    ok,
    issues,
    coverage: { medications: counts('medications'), allergies: counts('allergies'), problems: counts('problems') },
    sections,
    chars,
  };
}

/** The terms a summary left out, by name: PHI, for the database row the reviewer sees, never for Temporal or logs. */
export function missingTerms(notes: NoteForSummary[], summaryText: string): Record<TermKind, string[]> {
  const coverage = coverageOf(notes, summaryText ?? '');
  return { medications: coverage.medications.missing, allergies: coverage.allergies.missing, problems: coverage.problems.missing };
}
