import { durationProblem, parseDuration } from '../../common/durations';
import type { Actor, Role } from '../../common/roles';
import { problems } from '../problem';

/**
 * The shortest timer a caller may ask for. Tests drive whole processes with second-scale timers, and a timer
 * below a second would only race the run's own steps.
 */
export const TIMER_FLOOR = '1s';

export interface TimerRule {
  /** Roles that may set these timers; anyone else sending one of the fields gets 403. */
  roles: readonly Role[];
  /** The configured value of each timer: its default, and the longest a caller may ask for. */
  ceilings: Record<string, string>;
  /** Field path prefix for problem details, e.g. 'body.timers.'. */
  prefix: string;
  /** What the timers belong to, for the messages. */
  what: string;
}

/**
 * A caller may only shorten a process timer, within [TIMER_FLOOR, the configured value], and only with a role that
 * may; checked before anything is written or started.
 */
export function checkTimers(actor: Actor, requested: Record<string, string | undefined> | undefined, rule: TimerRule): void {
  // Stating the configured value changes nothing, so it needs no role (the README's walk-through sends "72h").
  const sent = Object.entries(requested ?? {}).filter(
    (e): e is [string, string] => e[1] !== undefined && parseDuration(e[1]) !== parseDuration(rule.ceilings[e[0]] ?? ''),
  );
  if (!sent.length) return;
  requireTimerRole(
    actor,
    sent.map(([k]) => `${rule.prefix}${k}`),
    rule,
  );
  const errors = sent.flatMap(([key, value]) => {
    const ceiling = rule.ceilings[key];
    const problem = durationProblem(value, { min: TIMER_FLOOR, max: ceiling });
    return problem
      ? [{ field: `${rule.prefix}${key}`, detail: `${problem} (a caller may shorten ${key} within ${TIMER_FLOOR}..${ceiling})` }]
      : [];
  });
  if (errors.length) {
    throw problems.unprocessable('timer-out-of-bounds', errors.map((e) => `${e.field}: ${e.detail}`).join('; '), { errors });
  }
}

/** 403 unless the actor holds one of the rule's roles; `fields` are the ones they sent. */
export function requireTimerRole(actor: Actor, fields: string[], rule: Pick<TimerRule, 'roles' | 'what'>): void {
  if (fields.length && !actor.roles.some((r) => rule.roles.includes(r))) {
    throw problems.forbidden(`setting ${rule.what} (${fields.join(', ')}) needs one of the roles ${rule.roles.join(', ')}`);
  }
}

/** A count (e.g. allowed extensions) a caller may lower but not raise above its configured value. */
export function checkCountCeiling(value: number | undefined, ceiling: number, field: string): void {
  if (value === undefined || value <= ceiling) return;
  throw problems.unprocessable('timer-out-of-bounds', `${field}: must be at most ${ceiling} (the configured value)`, {
    errors: [{ field, detail: `must be at most ${ceiling} (the configured value)` }],
  });
}
