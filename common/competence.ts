/**
 * Competence and authorisation (ISO/IEC 17025 6.2.5–6.2.6, CLIA 493.1451): definitions both the API and the
 * documentation use. Bundle-safe.
 */

/** How a competency is assessed (the six CLIA 493.1451(b)(8) methods, and a written test). */
export const ASSESSMENT_METHODS = [
  'direct_observation',
  'monitoring_records',
  'review_of_results',
  'blind_sample',
  'proficiency_testing',
  'problem_solving',
  'written_test',
] as const;
export type AssessmentMethod = (typeof ASSESSMENT_METHODS)[number];

export const ASSESSMENT_OUTCOMES = ['competent', 'not_competent'] as const;
export type AssessmentOutcome = (typeof ASSESSMENT_OUTCOMES)[number];

/** Who assesses competency and grants or revokes authorisations. */
export const COMPETENCE_OFFICERS = ['qa_manager', 'lab_director'] as const;

/** The meaning of the signature that grants an authorisation. */
export const AUTHORISATION_MEANING = 'authorisation';

export interface CompetencyPolicy {
  /** Assessments at this interval while the person has fewer than firstYearAssessments competent ones (COMPETENCY_FIRST_YEAR_INTERVAL). */
  firstYearIntervalMs: number;
  /** How many follow-up assessments the first year has (COMPETENCY_FIRST_YEAR_ASSESSMENTS): twice by default. */
  firstYearAssessments: number;
  /** Then at this interval (COMPETENCY_INTERVAL): yearly by default. */
  intervalMs: number;
}

export const DEFAULT_COMPETENCY_POLICY: CompetencyPolicy = {
  firstYearIntervalMs: 182 * 86_400_000,
  firstYearAssessments: 2,
  intervalMs: 365 * 86_400_000,
};

/**
 * When a competent person is next assessed: the initial assessment and the first-year ones are followed by
 * another after the first-year interval (so twice in the first year: at about 6 and 12 months), every later one
 * by the yearly interval. `earlierCompetent` counts the person's earlier competent assessments for the same
 * activity and scope.
 */
export function nextCompetencyDue(assessedAt: Date, earlierCompetent: number, policy: CompetencyPolicy): Date {
  const interval = earlierCompetent < policy.firstYearAssessments ? policy.firstYearIntervalMs : policy.intervalMs;
  return new Date(assessedAt.getTime() + interval);
}

/**
 * The statement the grantor signs: its SHA-256 (hex, over the UTF-8 text) is the signature's content hash, so the
 * signature binds the person, the activity, the scope and the validity exactly as sent.
 */
export function authorisationStatement(a: { username: string; activity: string; scope: string; validFrom: string; validUntil?: string | null }): string {
  return `authorise ${a.username} for ${a.activity} scope ${a.scope} from ${a.validFrom} until ${a.validUntil ?? 'revoked'}`;
}
