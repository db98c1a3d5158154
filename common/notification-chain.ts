/** One step of an escalation chain: everyone active with a role, or one person by username. */
export type ChainStep = { role: string } | { username: string };

/** `role:qa_manager,user:jdoe` → chain steps; null when an entry is neither. */
export function parseChain(value: string): ChainStep[] | null {
  const steps: ChainStep[] = [];
  for (const entry of value
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const m = /^(role|user):([A-Za-z0-9._@-]{1,100})$/.exec(entry);
    if (!m) return null;
    steps.push(m[1] === 'role' ? { role: m[2] } : { username: m[2] });
  }
  return steps;
}
