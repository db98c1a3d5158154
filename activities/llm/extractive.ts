import { extractClinicalTerms, NO_KNOWN_ALLERGIES } from './clinical-terms';
import type { Generation, NoteForSummary } from './types';

export const EXTRACTIVE_MODEL = 'labflow-extractive/1';
export const EXTRACTIVE_LABEL = 'Extractive summary (not AI-generated)';

export interface ComposeOptions {
  /** First line of the text; none for a model-like answer. */
  label?: string;
  /** How many of the most recent notes are quoted under Subjective, Objective and Assessment. */
  recentNotes?: number;
  /** Longest excerpt quoted from one section of one note. */
  excerptChars?: number;
}

const day = (note: NoteForSummary) => note.noteTime.slice(0, 10);
const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

function excerpt(text: string, max: number): string {
  const flat = oneLine(text);
  if (flat.length <= max) return flat;
  const cut = flat.slice(0, max);
  const sentenceEnd = cut.lastIndexOf('. ');
  return `${sentenceEnd > max / 2 ? cut.slice(0, sentenceEnd + 1) : cut.replace(/\s+\S*$/, '')} …`;
}

/** The phrase a term appears in (e.g. "metformin 500 mg twice daily"), from the most recent note that names it. */
function inContext(notes: NoteForSummary[], term: string): string {
  const pattern = new RegExp(`\\b${term.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b[^,;.\\n]{0,60}`, 'i');
  for (const note of notes) {
    const found = pattern.exec([note.subjective, note.objective, note.assessment, note.plan].join('\n'));
    if (found) return oneLine(found[0]);
  }
  return term;
}

/**
 * Lays the notes out under the summary headings, most recent first (the current state is what a clinician reads
 * first): excerpts of Subjective, Objective and Assessment from the latest notes, every plan item, and every
 * medication, allergy and problem any note names.
 */
export function composeSoapSummary(notes: NoteForSummary[], opts: ComposeOptions = {}): string {
  const recentNotes = opts.recentNotes ?? 3;
  const excerptChars = opts.excerptChars ?? 600;
  const ordered = [...notes].sort((a, b) => Date.parse(b.noteTime) - Date.parse(a.noteTime));
  const recent = ordered.slice(0, recentNotes);
  const older = ordered.length - recent.length;
  const terms = extractClinicalTerms(ordered);
  const lines: string[] = [];

  if (opts.label) {
    const span = ordered.length ? `${day(ordered[ordered.length - 1])} to ${day(ordered[0])}` : 'none';
    lines.push(
      `${opts.label}: copied from ${ordered.length} SOAP note${ordered.length === 1 ? '' : 's'} (${span}), most recent first. Check it against the notes.`,
      '',
    );
  }
  const quoted = (section: 'subjective' | 'objective' | 'assessment') => {
    const items = recent.filter((n) => n[section].trim()).map((n) => `- ${day(n)}: ${excerpt(n[section], excerptChars)}`);
    if (older > 0) items.push(`- ${older} earlier note${older === 1 ? '' : 's'} not quoted here.`);
    return items.length ? items : ['- Not recorded.'];
  };
  const list = (items: string[]) => (items.length ? items.map((i) => `- ${i}`) : ['- None recorded.']);

  lines.push('## Subjective', ...quoted('subjective'), '');
  lines.push('## Objective', ...quoted('objective'), '');
  lines.push('## Assessment', ...quoted('assessment'), '');
  const planItems = ordered.flatMap((n) => extractClinicalTerms([n]).planItems.map((item) => `${day(n)}: ${item}`));
  lines.push('## Plan', ...list(dedupe(planItems)), '');
  lines.push('## Medications', ...list(terms.medications.map((m) => inContext(ordered, m))), '');
  lines.push(
    '## Allergies',
    ...list(terms.allergies.map((a) => (a === NO_KNOWN_ALLERGIES ? NO_KNOWN_ALLERGIES : inContext(ordered, a)))),
    '',
  );
  lines.push('## Problems', ...list(terms.problems));
  return lines.join('\n');
}

/** A plan item carried from note to note is listed once, under its latest date ("YYYY-MM-DD: " is 12 characters). */
function dedupe(items: string[]): string[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const key = i.slice(12).toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The last resort: no network and no model, labelled on its first line as not AI-generated. */
export function extractiveSummary(notes: NoteForSummary[], opts: Omit<ComposeOptions, 'label'> = {}): Generation {
  const parameters = { method: 'extractive', recentNotes: opts.recentNotes ?? 3, excerptChars: opts.excerptChars ?? 600 };
  return {
    text: composeSoapSummary(notes, { ...opts, label: EXTRACTIVE_LABEL }),
    model: EXTRACTIVE_MODEL,
    inputTokens: null,
    outputTokens: null,
    parameters,
  };
}
