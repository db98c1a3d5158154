import type { NoteForSummary } from './types';

/**
 * The medications, allergies and problems a note names, found with plain rules (list headers, "allergic to",
 * drug-like words followed by a dose, a small lexicon of drug-name stems, Assessment items). Deliberately simple and
 * predictable: the validator holds every summary, AI or extractive, to the same list.
 */
export interface ClinicalTerms {
  medications: string[];
  allergies: string[];
  problems: string[];
  planItems: string[];
}

export const NO_KNOWN_ALLERGIES = 'NKDA';

const UNITS = String.raw`(?:mg|mcg|µg|ug|g|mL|ml|mEq|units?|IU|puffs?|tabs?|tablets?|caps?|capsules?|drops?)`;
// A dose, but not a lab value written with a per-volume unit (glucose 180 mg/dL).
const DOSE_AFTER = new RegExp(String.raw`^\s+\d+(?:[.,]\d+)?\s*${UNITS}\b(?!\s*\/\s*(?:dl|l|min|h|hr|kg\/min)\b)`, 'i');

const NOT_A_DRUG = new Set(
  `a an the and or of to from by with on at in for per than then was were is are be been take takes taking took start started
  starting continue continued continuing increase increased increasing decrease decreased decreasing reduce reduced titrate
  titrated stop stopped hold held resume resumed daily dose doses dosed dosing additional extra about approximately approx total
  plus bid tid qid prn qd qhs once twice weight weighs lost gained gain loss intake received given administered bolus infusion
  drink drinks protein fluid fluids water patient pt her his every each up down max maximum min minimum until after before only
  also now currently home previously new old last next day days week weeks month months year years hour hours today tonight
  morning evening night bedtime oral po iv im sc sq subcut inhaled topical tablet tablets tab tabs capsule capsules cap caps
  unit units mg mcg ml dl`.split(/\s+/),
);

const DRUG_NAMES = new Set(
  `metformin insulin aspirin warfarin heparin ibuprofen acetaminophen paracetamol naproxen levothyroxine amoxicillin penicillin
  codeine morphine oxycodone hydrocodone tramadol gabapentin pregabalin sertraline citalopram escitalopram fluoxetine
  paroxetine bupropion trazodone mirtazapine albuterol salbutamol montelukast clopidogrel digoxin amiodarone spironolactone
  furosemide torsemide bumetanide hydrochlorothiazide chlorthalidone allopurinol colchicine prednisone methotrexate
  hydroxychloroquine tamsulosin finasteride sildenafil nitroglycerin isosorbide diltiazem verapamil lithium lamotrigine
  levetiracetam phenytoin carbamazepine valproate topiramate quetiapine olanzapine risperidone aripiprazole haloperidol
  lorazepam diazepam alprazolam clonazepam zolpidem melatonin ondansetron metoclopramide omeprazole pantoprazole famotidine
  ranitidine loratadine cetirizine diphenhydramine fexofenadine epinephrine glipizide glyburide glimepiride pioglitazone
  semaglutide liraglutide dulaglutide tirzepatide empagliflozin dapagliflozin sitagliptin apixaban rivaroxaban dabigatran
  enoxaparin atorvastatin simvastatin rosuvastatin pravastatin ezetimibe lisinopril enalapril ramipril losartan valsartan
  amlodipine nifedipine metoprolol carvedilol atenolol propranolol labetalol clonidine hydralazine doxycycline azithromycin
  ciprofloxacin levofloxacin cephalexin ceftriaxone clindamycin vancomycin nitrofurantoin sulfamethoxazole trimethoprim
  fluconazole acyclovir valacyclovir oseltamivir cyanocobalamin ferrous budesonide fluticasone tiotropium ipratropium adalimumab etanercept`.split(
    /\s+/,
  ),
);

const DRUG_STEM =
  /^[a-z]{2,}(?:pril|sartan|olol|alol|statin|dipine|formin|gliptin|gliflozin|glutide|prazole|tidine|cillin|mycin|micin|floxacin|cycline|conazole|ciclovir|cyclovir|mivir|mab|tinib|parin|xaban|gatran|triptan|semide|thiazide|zepam|zolam|oxetine|faxine|pramine|triptyline|afil|lukast|terol|tropium|olone|isone|azepine|peridone|apine|barbital|profen|fenac|coxib|dronate|setron|thyroxine)$/;

export function isDrugName(word: string): boolean {
  const w = word.toLowerCase();
  return DRUG_NAMES.has(w) || DRUG_STEM.test(w);
}

const SECTION_HEADER = /^\s*[-*•]?\s*([A-Za-z][A-Za-z /]{1,30}?)\s*[:\-–—]\s*(.*)$/;
const BULLET = /^\s*(?:[-*•]|\d+[.)])\s+(.*)$/;

/** Items listed under a header such as "Medications:" — the rest of its line and the bullets right below it. */
function listsUnder(text: string, header: RegExp): string[] {
  const lines = text.split(/\r?\n/);
  const items: string[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const m = SECTION_HEADER.exec(lines[i]);
    if (!m || !header.test(m[1].trim())) continue;
    if (m[2].trim()) items.push(...splitItems(m[2]));
    for (let j = i + 1; j < lines.length; j += 1) {
      const bullet = BULLET.exec(lines[j]);
      if (!bullet) break;
      items.push(...splitItems(bullet[1]));
    }
  }
  return items;
}

/** The text without any labelled list (Medications:, Allergies:, Problems: and their bullets), read separately. */
function withoutLists(text: string): string {
  const lines = text.split(/\r?\n/);
  const kept: string[] = [];
  let inList = false;
  for (const line of lines) {
    const m = SECTION_HEADER.exec(line);
    const header = m?.[1].trim() ?? '';
    if (m && (MEDS_HEADER.test(header) || ALLERGY_HEADER.test(header) || PROBLEM_HEADER.test(header))) {
      inList = true;
      continue;
    }
    if (inList && BULLET.test(line)) continue;
    inList = false;
    kept.push(line);
  }
  return kept.join('\n');
}

function splitItems(text: string): string[] {
  return text
    .split(/[;,\n]|\s+\d+[.)]\s+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function clean(term: string): string {
  return term
    .replace(/\([^)]*\)/g, ' ')
    .replace(/\s+/g, ' ')
    .replace(/^[\s\-*•.:]+|[\s\-*•.:]+$/g, '')
    .trim();
}

const MEDS_HEADER = /^(?:current\s+|home\s+|active\s+)?(?:medications?|meds|medication list|rx)$/i;
const ALLERGY_HEADER = /^(?:drug\s+)?allerg(?:y|ies)$/i;
const PROBLEM_HEADER = /^(?:problems?|problem list|active problems|dx|diagnos[ie]s|impression)$/i;
const NKDA = /\bNKDA\b|\bNKA\b|\bno known (?:drug |medication )?allergies\b/i;
const ALLERGIC_TO = /\ballerg(?:ic|y|ies) to\s+([^.;:\n]+)/gi;
// "Allergies: penicillin, sulfa." written inside a sentence rather than as a list heading.
const ALLERGIES_INLINE = /\b(?:drug\s+)?allerg(?:y|ies)\s*:\s*([^.;:\n]+)/gi;

function allergyItem(raw: string): string | undefined {
  const item = clean(raw.split(/\s+(?:-|–|—|->|causing|causes|caused|with|which|that|leading)\s+/i)[0].split(/:/)[0]);
  if (!item || /^(none|nil|no)$/i.test(item) || NKDA.test(item)) return undefined;
  const words = item.split(' ');
  return words.length <= 4 ? item : undefined;
}

function medicationName(raw: string): string | undefined {
  const words = clean(raw).split(' ');
  const name: string[] = [];
  for (const w of words) {
    if (/\d/.test(w) || NOT_A_DRUG.has(w.toLowerCase()) || !/^[A-Za-z][A-Za-z-]*$/.test(w)) break;
    name.push(w);
    if (name.length === 3) break;
  }
  if (name.length === 0 || /^(none|nil)$/i.test(name[0])) return undefined;
  return name.join(' ');
}

const PROSE_START = new Set(
  `patient pt he she they doing will no not overall likely stable improving improved continue plan seen here today the this
  a an is are was were follow monitor discussed counseled we i`.split(/\s+/),
);

const QUALIFIER =
  /\s+[-–—]\s+|[,:;(]|\s+(?:with|on|due to|secondary to|likely|possibly|improving|worsening|stable|controlled|uncontrolled|well|poorly|now|currently)\b/i;

function problemItem(raw: string): string | undefined {
  const header = SECTION_HEADER.exec(raw);
  if (header && (MEDS_HEADER.test(header[1].trim()) || ALLERGY_HEADER.test(header[1].trim()) || PROBLEM_HEADER.test(header[1].trim())))
    return undefined;
  if (NKDA.test(raw) || /\ballerg/i.test(raw)) return undefined;
  const item = clean(raw.replace(/^\s*(?:\d+[.)]|[-*•])\s*/, '').split(QUALIFIER)[0]);
  if (!item || !/^[A-Za-z]/.test(item)) return undefined;
  const words = item.split(' ');
  if (words.length > 6 || PROSE_START.has(words[0].toLowerCase()) || isDrugName(words[0])) return undefined;
  return item;
}

function pushUnique(list: string[], seen: Set<string>, term: string | undefined): void {
  if (!term) return;
  const key = conceptKey(term);
  if (seen.has(key)) return;
  seen.add(key);
  list.push(term);
}

function notesText(note: NoteForSummary): string {
  return [note.subjective, note.objective, note.assessment, note.plan].join('\n');
}

/** Terms from all notes, most recent note first, each named once. */
export function extractClinicalTerms(notes: NoteForSummary[]): ClinicalTerms {
  const ordered = [...notes].sort((a, b) => Date.parse(b.noteTime) - Date.parse(a.noteTime));
  const meds: string[] = [];
  const allergies: string[] = [];
  const problems: string[] = [];
  const planItems: string[] = [];
  const seen = { meds: new Set<string>(), allergies: new Set<string>(), problems: new Set<string>(), plan: new Set<string>() };
  let noKnownAllergies = false;

  for (const note of ordered) {
    const text = notesText(note);

    for (const item of listsUnder(text, ALLERGY_HEADER)) {
      if (NKDA.test(item) || /^none$/i.test(item.trim())) noKnownAllergies = true;
      else pushUnique(allergies, seen.allergies, allergyItem(item));
    }
    for (const m of [...text.matchAll(ALLERGIC_TO), ...text.matchAll(ALLERGIES_INLINE)]) {
      for (const part of m[1].split(/,|\band\b|\bor\b/i)) pushUnique(allergies, seen.allergies, allergyItem(part));
    }
    if (NKDA.test(text)) noKnownAllergies = true;

    // Drugs named as allergies are not medications the patient takes.
    const withoutAllergies = text
      .split(/\r?\n/)
      .filter((line) => {
        const m = SECTION_HEADER.exec(line);
        return !(m && ALLERGY_HEADER.test(m[1].trim()));
      })
      .join('\n')
      .replace(ALLERGIC_TO, ' ')
      .replace(ALLERGIES_INLINE, ' ');

    for (const item of listsUnder(withoutAllergies, MEDS_HEADER)) pushUnique(meds, seen.meds, medicationName(item));
    const words = [...withoutAllergies.matchAll(/[A-Za-z][A-Za-z-]{2,}/g)];
    for (const w of words) {
      const word = w[0];
      const after = withoutAllergies.slice((w.index ?? 0) + word.length);
      if (isDrugName(word) || (DOSE_AFTER.test(after) && !NOT_A_DRUG.has(word.toLowerCase()) && !PROBLEM_WORDS.has(word.toLowerCase()))) {
        pushUnique(meds, seen.meds, word.toLowerCase());
      }
    }

    for (const item of listsUnder(text, PROBLEM_HEADER)) pushUnique(problems, seen.problems, problemItem(item));
    for (const item of withoutLists(note.assessment).split(/\r?\n|;|(?<=\.)\s+(?=[A-Z])|\s+(?=\d+[.)]\s)/)) {
      pushUnique(problems, seen.problems, problemItem(item));
    }

    for (const item of note.plan.split(/\r?\n|;|(?<=\.)\s+(?=[A-Z])|\s+(?=\d+[.)]\s)/)) {
      const cleaned = clean(item.replace(/^(?:\d+[.)]|[-*•])\s*/, ''));
      if (cleaned.length >= 3) pushUnique(planItems, seen.plan, cleaned);
    }
  }

  // A specific allergy in any note outweighs "no known allergies" in another.
  if (noKnownAllergies && allergies.length === 0) allergies.push(NO_KNOWN_ALLERGIES);
  const notProblems = new Set([...seen.meds, ...seen.allergies]);
  return { medications: meds, allergies, problems: problems.filter((p) => !notProblems.has(conceptKey(p))), planItems };
}

// Lab and vital-sign names that precede a number and a unit without being drugs.
const PROBLEM_WORDS = new Set([
  'glucose',
  'creatinine',
  'cholesterol',
  'ldl',
  'hdl',
  'triglycerides',
  'hemoglobin',
  'sodium',
  'albumin',
  'protein',
]);

const SYNONYMS: string[][] = [
  ['hypertension', 'htn', 'high blood pressure'],
  ['type 2 diabetes mellitus', 'type 2 diabetes', 't2dm', 'dm2', 'dm type 2', 'diabetes mellitus type 2', 'type ii diabetes', 'niddm'],
  ['type 1 diabetes mellitus', 'type 1 diabetes', 't1dm', 'dm1', 'diabetes mellitus type 1'],
  ['hyperlipidemia', 'hld', 'dyslipidemia', 'high cholesterol', 'hypercholesterolemia'],
  ['chronic kidney disease', 'ckd'],
  ['congestive heart failure', 'chf', 'heart failure', 'hfref', 'hfpef'],
  ['coronary artery disease', 'cad'],
  ['chronic obstructive pulmonary disease', 'copd'],
  ['gastroesophageal reflux disease', 'gerd', 'acid reflux', 'reflux'],
  ['atrial fibrillation', 'afib', 'a-fib', 'a fib'],
  ['osteoarthritis', 'oa', 'degenerative joint disease', 'djd'],
  ['major depressive disorder', 'mdd', 'depression'],
  ['generalized anxiety disorder', 'gad', 'anxiety'],
  ['urinary tract infection', 'uti'],
  ['upper respiratory infection', 'uri', 'upper respiratory tract infection'],
  ['obstructive sleep apnea', 'osa', 'sleep apnea'],
  ['acetaminophen', 'paracetamol', 'apap', 'tylenol'],
  ['albuterol', 'salbutamol'],
  ['aspirin', 'asa'],
  ['sulfa', 'sulfonamide', 'sulfonamides', 'sulfa drugs'],
  ['penicillin', 'pcn', 'penicillins'],
  [NO_KNOWN_ALLERGIES.toLowerCase(), 'nka', 'no known allergies', 'no known drug allergies', 'no known medication allergies'],
];

export function normalize(text: string): string {
  return text
    .toLowerCase()
    .replace(/[‐-―]/g, '-')
    .replace(/[^a-z0-9\-/+.%\s]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

const GROUP_OF = new Map<string, string[]>(
  SYNONYMS.flatMap((group) => group.map((form) => [normalize(form), group.map(normalize)] as const)),
);

/** One key per concept, so HTN and hypertension are one problem. */
export function conceptKey(term: string): string {
  const n = normalize(term);
  return GROUP_OF.get(n)?.[0] ?? n;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const FILLER = new Set(['of', 'the', 'and', 'with', 'without', 'in', 'on', 'to', 'a', 'an', 'type', 'due', 'left', 'right', 'bilateral']);

function containsPhrase(haystack: string, phrase: string): boolean {
  if (!phrase) return false;
  return new RegExp(`(?:^|[^a-z0-9])${escape(phrase).replace(/ /g, '[\\s-]+')}(?:$|[^a-z0-9])`).test(haystack);
}

/**
 * Whether a summary names a term: the same words in any case and spacing, a known synonym or abbreviation, or (for
 * a phrase of several words) every significant word of it, numbers included.
 */
export function mentionsTerm(summary: string, term: string): boolean {
  const haystack = normalize(summary);
  const n = normalize(term);
  const forms = GROUP_OF.get(n) ?? [n];
  if (forms.some((form) => containsPhrase(haystack, form))) return true;
  const words = n.split(' ').filter((w) => !FILLER.has(w) && (w.length >= 3 || /\d/.test(w)));
  return words.length > 1 && words.every((w) => containsPhrase(haystack, w));
}
