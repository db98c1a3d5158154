import { ROLES, type Role } from './roles';

/**
 * OIDC_ROLE_MAP: a JSON object from a group or role name the identity provider puts in the token to one labflow
 * role or a list of them, e.g. {"lab-qa":"qa_manager","lab-docs":["document_control","author"]}.
 * Returns the map, or the reason it is not one.
 */
export function parseRoleMap(text: string): { map: Record<string, Role[]> } | { problem: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { problem: 'expected a JSON object such as {"lab-qa":"qa_manager"}' };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { problem: 'expected a JSON object such as {"lab-qa":"qa_manager"}' };
  const map: Record<string, Role[]> = {};
  for (const [group, value] of Object.entries(parsed)) {
    const roles: unknown[] = Array.isArray(value) ? value : [value];
    const unknown = roles.filter((r) => !ROLES.includes(r as Role));
    if (unknown.length || !roles.length) {
      return { problem: `${JSON.stringify(group)} maps to ${JSON.stringify(value)}; the labflow roles are ${ROLES.join(', ')}` };
    }
    map[group] = roles as Role[];
  }
  return { map };
}
