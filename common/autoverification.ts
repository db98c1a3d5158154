import type { DeltaCheck } from './result-rules';
import type { Flag } from './results';

/**
 * Autoverification rule sets (CLSI AUTO10/AUTO15 as the model): per test, versioned, signed by the lab director.
 * A submitted result that passes every rule of the test's newest version is verified by the rule set; one that fails
 * any rule goes to a person with the reasons. Bundle-safe.
 */
export interface AutoverificationRules {
  /** The flags a result may carry; any other flag goes to a person. `null` (no range matched) passes only when listed. */
  allowedFlags: (Flag | null)[];
  /** Autoverification limits in the test's unit (commonly narrower than the reference interval's surroundings). */
  limits: { low: number | null; high: number | null } | null;
  /** `ignore`; `must-pass`: an exceeded delta check fails; `must-pass-with-previous`: no previous result fails too. */
  delta: 'ignore' | 'must-pass' | 'must-pass-with-previous';
  /** Instrument flags that send a result to a person; `*` stands for any flag. */
  blockedInstrumentFlags: string[];
  /** The specimen's inspection must have passed every check, and the specimen be neither hemolysed nor clotted. */
  requireAcceptableSpecimen: boolean;
  /** A result typed in by hand (no instrument) goes to a person. */
  requireInstrument: boolean;
}

export const AUTOVERIFICATION_RULES = ['result-kind', 'flag', 'limits', 'delta', 'instrument-flags', 'specimen', 'instrument'] as const;
export type AutoverificationRule = (typeof AUTOVERIFICATION_RULES)[number];

export interface AutoverificationReason {
  rule: AutoverificationRule;
  detail: string;
}

/** What a result is judged on: read from PostgreSQL by the judging activity, never from a caller. */
export interface AutoverificationFacts {
  kind: 'numeric' | 'coded' | 'text';
  value: number | null;
  flag: Flag | null;
  deltaCheck: DeltaCheck | null;
  instrument: string | null;
  instrumentFlags: string[];
  /** The inspection's failed checks and the specimen's noted conditions (hemolysed, clotted). */
  specimenProblems: string[];
}

/** Every rule the result breaks (none: it passes). */
export function autoverificationReasons(rules: AutoverificationRules, f: AutoverificationFacts): AutoverificationReason[] {
  const reasons: AutoverificationReason[] = [];
  if (f.kind !== 'numeric' || f.value === null) {
    reasons.push({ rule: 'result-kind', detail: `a ${f.kind} result is verified by a person` });
  } else {
    if (!rules.allowedFlags.includes(f.flag)) reasons.push({ rule: 'flag', detail: `flag ${f.flag ?? 'none (no reference range matched)'} is not allowed` });
    const l = rules.limits;
    if (l && ((l.low !== null && f.value < l.low) || (l.high !== null && f.value > l.high))) {
      reasons.push({ rule: 'limits', detail: `outside the autoverification limits ${l.low ?? '-∞'} to ${l.high ?? '∞'}` });
    }
    if (rules.delta !== 'ignore') {
      if (!f.deltaCheck) reasons.push({ rule: 'delta', detail: 'the test has no delta limit configured' });
      else if (f.deltaCheck.exceeded) reasons.push({ rule: 'delta', detail: `the delta check against ${f.deltaCheck.previous?.workflowId} exceeded its limit` });
      else if (f.deltaCheck.exceeded === null && rules.delta === 'must-pass-with-previous') {
        reasons.push({ rule: 'delta', detail: 'no previous result to check the delta against' });
      }
    }
  }
  const blocked = f.instrumentFlags.filter((flag) => rules.blockedInstrumentFlags.includes('*') || rules.blockedInstrumentFlags.includes(flag));
  if (blocked.length) reasons.push({ rule: 'instrument-flags', detail: `instrument flag(s) ${blocked.join(', ')}` });
  if (rules.requireAcceptableSpecimen && f.specimenProblems.length) reasons.push({ rule: 'specimen', detail: f.specimenProblems.join('; ') });
  if (rules.requireInstrument && !f.instrument) reasons.push({ rule: 'instrument', detail: 'entered by hand, not by an instrument' });
  return reasons;
}

/** What the run learns of an autoverification: the outcome and the rule set's version, no values. */
export interface AutoverificationOutcome {
  outcome: 'passed' | 'failed' | 'no-rule-set';
  version: number | null;
}
