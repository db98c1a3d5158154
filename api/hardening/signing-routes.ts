import { z } from 'zod';
import type { RouteSpec } from '../route';

/** Whether a JSON Schema takes a `password` anywhere (a signature's re-authentication, a password change). */
function takesPassword(schema: unknown): boolean {
  if (!schema || typeof schema !== 'object') return false;
  if (Array.isArray(schema)) return schema.some(takesPassword);
  const properties = (schema as { properties?: Record<string, unknown> }).properties;
  if (properties && Object.keys(properties).some((name) => /password/i.test(name))) return true;
  return Object.values(schema).some(takesPassword);
}

/**
 * The routes that check a password, found from their body schemas so that a new signing route is covered
 * without a list to keep: they get the stricter sign-in budget (RATE_LIMIT_SIGNING_*).
 */
export function signingSpecs(specs: RouteSpec[]): RouteSpec[] {
  return specs.filter((spec) => spec.body && takesPassword(z.toJSONSchema(spec.body, { io: 'input', unrepresentable: 'any' })));
}
