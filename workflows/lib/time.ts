/** An instant as the ISO 8601 UTC string kept in workflow state (state holds plain JSON, never Date objects). */
export const iso = (ms: number): string => new Date(ms).toISOString();
