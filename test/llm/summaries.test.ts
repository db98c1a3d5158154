import assert from 'node:assert/strict';
import { extractClinicalTerms, mentionsTerm } from '../../activities/llm/clinical-terms';
import { composeSoapSummary, EXTRACTIVE_MODEL, extractiveSummary } from '../../activities/llm/extractive';
import { missingTerms, validateSummary } from '../../activities/llm/validate';
import { SAMPLE_NOTES } from './sample-notes';

describe('finding medications, allergies and problems in notes', () => {
  const terms = extractClinicalTerms(SAMPLE_NOTES);

  it('finds medications from Meds: lists, from a name before a dose, and from drug-name stems', () => {
    assert.deepEqual([...terms.medications].sort(), ['atorvastatin', 'lisinopril', 'losartan', 'metformin']);
  });

  it('finds allergies from "Allergies:" lists and "allergic to", and never counts them as medications', () => {
    assert.deepEqual([...terms.allergies].sort(), ['penicillin', 'sulfa']);
  });

  it('finds problems from Assessment items and "Problems:" lists, one per concept', () => {
    const keys = terms.problems.map((p) => p.toLowerCase());
    assert.ok(keys.includes('hypertension'));
    assert.ok(keys.includes('t2dm'));
    assert.ok(keys.includes('hyperlipidemia'));
    assert.ok(!keys.includes('type 2 diabetes mellitus'), 'T2DM and type 2 diabetes mellitus are one problem');
    assert.ok(!keys.includes('sulfa'));
  });

  it('takes "Allergies: X" written inside a sentence for an allergy, not a medication', () => {
    const inline = extractClinicalTerms([
      {
        noteTime: '2026-01-01T00:00:00Z',
        subjective: 'Cough for 5 days. Allergies: penicillin, sulfa. Takes paracetamol 500 mg.',
        objective: '',
        assessment: '',
        plan: '',
      },
    ]);
    assert.deepEqual([...inline.allergies].sort(), ['penicillin', 'sulfa']);
    assert.deepEqual(inline.medications, ['paracetamol']);
  });

  it('does not take lab values for medications', () => {
    const labs = extractClinicalTerms([
      {
        noteTime: '2026-01-01T00:00:00Z',
        subjective: '',
        objective: 'Glucose 182 mg/dL, creatinine 1.1 mg/dL, potassium 4.1 mmol/L.',
        assessment: '',
        plan: '',
      },
    ]);
    assert.deepEqual(labs.medications, []);
  });

  it('records NKDA only when no note names a specific allergy', () => {
    const nkda = extractClinicalTerms([{ noteTime: '2026-01-01T00:00:00Z', subjective: 'NKDA.', objective: '', assessment: '', plan: '' }]);
    assert.deepEqual(nkda.allergies, ['NKDA']);
    const both = extractClinicalTerms([
      { noteTime: '2026-01-01T00:00:00Z', subjective: 'NKDA.', objective: '', assessment: '', plan: '' },
      { noteTime: '2026-02-01T00:00:00Z', subjective: 'Now allergic to amoxicillin (rash).', objective: '', assessment: '', plan: '' },
    ]);
    assert.deepEqual(both.allergies, ['amoxicillin']);
  });

  it('accepts synonyms and abbreviations as mentions', () => {
    assert.ok(mentionsTerm('Known HTN, on losartan.', 'hypertension'));
    assert.ok(mentionsTerm('- Type 2 diabetes', 'T2DM'));
    assert.ok(mentionsTerm('No known drug allergies.', 'NKDA'));
    assert.ok(!mentionsTerm('Type 1 diabetes', 'type 2 diabetes mellitus'));
    assert.ok(!mentionsTerm('metformina', 'metformin'));
  });
});

describe('the extractive summary', () => {
  const generation = extractiveSummary(SAMPLE_NOTES);
  const lines = generation.text.split('\n');

  it('says on its first line that it is not AI-generated', () => {
    assert.match(lines[0], /^Extractive summary \(not AI-generated\)/);
    assert.equal(generation.model, EXTRACTIVE_MODEL);
    assert.equal(generation.inputTokens, null);
  });

  it('lays out the S/O/A/P sections, most recent note first', () => {
    for (const heading of ['Subjective', 'Objective', 'Assessment', 'Plan']) assert.ok(lines.includes(`## ${heading}`), heading);
    const subjective = lines.slice(lines.indexOf('## Subjective') + 1, lines.indexOf('## Objective')).filter(Boolean);
    assert.deepEqual(
      subjective.map((l) => l.slice(2, 12)),
      ['2026-03-28', '2026-02-14', '2026-01-10'],
    );
  });

  it('lists every medication with its dose where given, every allergy and every plan item', () => {
    const section = (name: string) =>
      lines
        .slice(lines.indexOf(`## ${name}`) + 1)
        .join('\n')
        .split('\n## ')[0];
    assert.match(section('Medications'), /^- metformin 1000 mg BID$/m);
    assert.match(section('Medications'), /^- losartan 50 mg daily$/m);
    assert.match(section('Allergies'), /penicillin/);
    assert.match(section('Allergies'), /sulfa/);
    for (const item of [
      'Repeat A1c in 3 months',
      'Annual eye exam referral',
      'Switch lisinopril to losartan 50 mg daily',
      'Recheck BMP in 2 weeks',
    ]) {
      assert.ok(section('Plan').includes(item), item);
    }
  });

  it('passes the same validation as a model’s summary', () => {
    assert.deepEqual(validateSummary(SAMPLE_NOTES, generation.text, { maxChars: 20_000 }).issues, []);
  });

  it('quotes only the latest notes when there are many', () => {
    const many = Array.from({ length: 8 }, (_, i) => ({ ...SAMPLE_NOTES[i % 3], noteTime: `2026-0${i + 1}-01T00:00:00.000Z` }));
    const text = composeSoapSummary(many, { recentNotes: 3 });
    assert.match(text, /5 earlier notes not quoted here/);
  });
});

describe('validating a summary before it is stored', () => {
  const good = composeSoapSummary(SAMPLE_NOTES);
  const validate = (text: string) => validateSummary(SAMPLE_NOTES, text, { maxChars: 20_000 });

  it('accepts a complete summary and reports full coverage', () => {
    const v = validate(good);
    assert.equal(v.ok, true);
    assert.deepEqual(v.coverage.medications, { expected: 4, found: 4 });
    assert.deepEqual(v.coverage.allergies, { expected: 2, found: 2 });
    assert.ok(Object.values(v.sections).every(Boolean));
  });

  it('catches a missing section', () => {
    const v = validate(good.replace('## Objective', '## Findings'));
    assert.equal(v.ok, false);
    assert.deepEqual(v.issues, [{ code: 'missing_section', count: 1 }]);
    assert.equal(v.sections.objective, false);
  });

  it('accepts SOAP headings written as "S:" or in bold', () => {
    const v = validate(good.replace('## Subjective', 'S:').replace('## Objective', '**Objective**'));
    assert.equal(v.sections.subjective, true);
    assert.equal(v.sections.objective, true);
  });

  it('catches an omitted medication and an omitted allergy, naming them only in the separate list', () => {
    const text = good.replace(/atorvastatin/gi, 'a statin').replace(/sulfa/gi, 'another drug');
    const v = validate(text);
    assert.equal(v.ok, false);
    assert.deepEqual(v.issues, [
      { code: 'omitted_medication', count: 1 },
      { code: 'omitted_allergy', count: 1 },
    ]);
    assert.deepEqual(v.coverage.medications, { expected: 4, found: 3 });
    assert.doesNotMatch(JSON.stringify(v), /atorvastatin|sulfa/i);
    const missing = missingTerms(SAMPLE_NOTES, text);
    assert.deepEqual(missing.medications, ['atorvastatin']);
    assert.deepEqual(missing.allergies, ['sulfa']);
  });

  it('flags an omitted problem for the reviewer without failing the summary', () => {
    const v = validate(good.replace(/hyperlipidemia/gi, 'lipids'));
    assert.equal(v.ok, true);
    assert.deepEqual(v.issues, [{ code: 'omitted_problem', count: 1 }]);
    assert.equal(
      validateSummary(SAMPLE_NOTES, good.replace(/hyperlipidemia/gi, 'lipids'), { maxChars: 20_000, failOnOmitted: ['problems'] }).ok,
      false,
    );
  });

  it('catches absurd lengths: empty, a line, longer than the notes, over the limit', () => {
    assert.deepEqual(
      validate('').issues.map((i) => i.code),
      ['empty', 'missing_section', 'omitted_medication', 'omitted_allergy', 'omitted_problem'],
    );
    assert.ok(validate('## Subjective\nok').issues.some((i) => i.code === 'too_short'));
    assert.ok(validate(`${good}\n${'Filler sentence repeated. '.repeat(400)}`).issues.some((i) => i.code === 'too_long'));
    assert.ok(validateSummary(SAMPLE_NOTES, good, { maxChars: 500 }).issues.some((i) => i.code === 'too_long'));
  });
});
