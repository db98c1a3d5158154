/**
 * Free-text SOAP notes split into their four sections. Pure (no Node imports), so the API, activities and
 * workflow code can share it. Error messages name headings and line numbers only, never the note's words, so
 * they are safe to return to a client or to write to a log.
 */

export const SOAP_SECTIONS = ['subjective', 'objective', 'assessment', 'plan'] as const;
export type SoapSection = (typeof SOAP_SECTIONS)[number];
export type SoapSections = Record<SoapSection, string>;

const LABEL: Record<SoapSection, string> = {
  subjective: 'Subjective (S:)',
  objective: 'Objective (O:)',
  assessment: 'Assessment (A:)',
  plan: 'Plan (P:)',
};

const HEADING_WORDS: Record<string, SoapSection> = {
  s: 'subjective',
  subjective: 'subjective',
  o: 'objective',
  objective: 'objective',
  a: 'assessment',
  assessment: 'assessment',
  p: 'plan',
  plan: 'plan',
};

// A heading opens a line (indentation allowed); what follows the colon on that line already belongs to the section.
const HEADING = /^[ \t]*(subjective|objective|assessment|plan|s|o|a|p)[ \t]*:[ \t]?(.*)$/i;

export type SoapParseResult = { ok: true; sections: SoapSections } | { ok: false; errors: string[] };

/** Trims the blank lines and spaces around a section's text, keeping its inner line breaks. */
function tidy(lines: string[]): string {
  return lines.join('\n').replace(/^\s+|\s+$/g, '');
}

/**
 * Reads "S:/Subjective:", "O:/Objective:", "A:/Assessment:" and "P:/Plan:" headings (any case, any order) at line
 * starts. Refused: text before the first heading, no heading at all, a heading given twice (a vital sign written
 * as "P: 72" at a line start would otherwise be filed silently as the plan), and a note whose sections are all
 * empty. Sections without a heading are empty.
 */
export function parseSoapText(text: string): SoapParseResult {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const collected: Partial<Record<SoapSection, string[]>> = {};
  const seenAt: Partial<Record<SoapSection, number>> = {};
  const errors: string[] = [];
  const preamble: number[] = [];
  let current: SoapSection | undefined;

  lines.forEach((line, index) => {
    const lineNo = index + 1;
    const match = HEADING.exec(line);
    if (match) {
      const section = HEADING_WORDS[match[1].toLowerCase()];
      if (seenAt[section] !== undefined) {
        errors.push(
          `the ${LABEL[section]} heading appears twice (lines ${seenAt[section]} and ${lineNo}); ` +
            'write a value that starts a line with a heading word differently (e.g. "Pulse 72" rather than "P: 72")',
        );
      } else {
        seenAt[section] = lineNo;
        collected[section] = [];
      }
      current = section;
      collected[section]!.push(match[2]);
      return;
    }
    if (current) collected[current]!.push(line);
    else if (line.trim() !== '') preamble.push(lineNo);
  });

  const found = SOAP_SECTIONS.filter((s) => seenAt[s] !== undefined);
  const missing = SOAP_SECTIONS.filter((s) => seenAt[s] === undefined).map((s) => LABEL[s]);
  if (found.length === 0) {
    return {
      ok: false,
      errors: [`no section headings found; start sections with lines such as ${SOAP_SECTIONS.map((s) => LABEL[s]).join(', ')}`],
    };
  }
  if (preamble.length) {
    const where = preamble.length === 1 ? `line ${preamble[0]}` : `lines ${preamble[0]}–${preamble[preamble.length - 1]}`;
    errors.push(`text before the first section heading (${where}) belongs to no section; put it under a heading`);
  }
  const sections = Object.fromEntries(SOAP_SECTIONS.map((s) => [s, tidy(collected[s] ?? [])])) as SoapSections;
  if (SOAP_SECTIONS.every((s) => sections[s] === '')) {
    errors.push(`every section is empty; write at least one${missing.length ? ` (no heading found for ${missing.join(', ')})` : ''}`);
  }
  return errors.length ? { ok: false, errors } : { ok: true, sections };
}

/** True when at least one section has text: the least a note must carry. */
export function hasSoapContent(sections: Partial<SoapSections>): boolean {
  return SOAP_SECTIONS.some((s) => (sections[s] ?? '').trim() !== '');
}

/** The four sections as free text with full headings, the inverse of parseSoapText for display and prompts. */
export function formatSoapText(sections: SoapSections): string {
  const heading: Record<SoapSection, string> = { subjective: 'Subjective', objective: 'Objective', assessment: 'Assessment', plan: 'Plan' };
  return SOAP_SECTIONS.filter((s) => sections[s] !== '')
    .map((s) => `${heading[s]}:\n${sections[s]}`)
    .join('\n\n');
}
