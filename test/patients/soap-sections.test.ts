import assert from 'node:assert/strict';
import { formatSoapText, parseSoapText, type SoapParseResult } from '../../common/soap-sections';

const sections = (result: SoapParseResult) => {
  assert.ok(result.ok, JSON.stringify(result));
  return result.sections;
};
const errors = (result: SoapParseResult) => {
  assert.ok(!result.ok, JSON.stringify(result));
  return result.errors;
};

describe('free-text SOAP notes are split into their sections', () => {
  it('reads short and long headings in any case, with text on the heading line or below it', () => {
    assert.deepEqual(sections(parseSoapText('s: cough\nOBJECTIVE:\n  T 38.1\n  RR 18\nAssessment : bronchitis\nplan:fluids')), {
      subjective: 'cough',
      objective: 'T 38.1\n  RR 18',
      assessment: 'bronchitis',
      plan: 'fluids',
    });
  });

  it('takes headings in any order, and leaves sections without a heading empty', () => {
    assert.deepEqual(sections(parseSoapText('P: review in a week\r\nS: better')), {
      subjective: 'better',
      objective: '',
      assessment: '',
      plan: 'review in a week',
    });
  });

  it('allows indented headings and blank lines before the first one', () => {
    assert.equal(sections(parseSoapText('\n\n   A: stable\n')).assessment, 'stable');
  });

  it('does not take a word that merely starts like a heading for one', () => {
    const s = sections(parseSoapText('O: Pulse: 72\nAssessment of gait: normal\nPlanned: nothing\nA: fine'));
    assert.equal(s.objective, 'Pulse: 72\nAssessment of gait: normal\nPlanned: nothing');
    assert.equal(s.assessment, 'fine');
  });

  it('refuses text with no headings, listing every heading it looks for', () => {
    const [message] = errors(parseSoapText('Patient well. Continue.'));
    assert.match(message, /no section headings found/);
    for (const h of ['Subjective (S:)', 'Objective (O:)', 'Assessment (A:)', 'Plan (P:)']) assert.ok(message.includes(h), h);
  });

  it('refuses text before the first heading, naming its lines but not its words', () => {
    const [message] = errors(parseSoapText('Seen in clinic.\nCame alone.\nS: cough'));
    assert.match(message, /lines 1–2/);
    assert.ok(!message.includes('clinic'));
  });

  it('refuses a heading given twice, naming both lines', () => {
    const [message] = errors(parseSoapText('O: BP 120/80\nP: 72\nA: ok\nPlan: rest'));
    assert.match(message, /Plan \(P:\) heading appears twice \(lines 2 and 4\)/);
  });

  it('refuses a note whose sections are all empty, naming the missing headings', () => {
    const [message] = errors(parseSoapText('S:\n\nO:   \n'));
    assert.match(message, /every section is empty/);
    assert.match(message, /Assessment \(A:\), Plan \(P:\)/);
  });

  it('writes sections back as text that parses to the same sections', () => {
    const original = { subjective: 'cough\nfor a week', objective: '', assessment: 'bronchitis', plan: 'fluids' };
    assert.deepEqual(sections(parseSoapText(formatSoapText(original))), original);
  });
});
