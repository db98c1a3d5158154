import { dictionary } from '@zxcvbn-ts/language-common';

/**
 * The common passwords zxcvbn-ts ships (about 49,000, from breach corpora), lower-cased: a signing password may
 * not be one of them whatever its case.
 */
const COMMON_PASSWORDS = new Set(dictionary['passwords-common'].map((p) => p.toLowerCase()));

export const MAX_PASSWORD_LENGTH = 200;

export type PasswordRule =
  'password-too-short' | 'password-too-long' | 'password-common' | 'password-contains-username' | 'password-reused';

export interface PasswordRefusal {
  rule: PasswordRule;
  detail: string;
}

/** The first rule a new signing password breaks that needs no database (reuse is checked against the hashes). */
export function passwordRuleBroken(password: string, context: { minLength: number; username: string }): PasswordRefusal | null {
  const length = [...password].length;
  if (length < context.minLength) {
    return { rule: 'password-too-short', detail: `a signing password needs at least ${context.minLength} characters` };
  }
  if (length > MAX_PASSWORD_LENGTH) {
    return { rule: 'password-too-long', detail: `a signing password has at most ${MAX_PASSWORD_LENGTH} characters` };
  }
  if (COMMON_PASSWORDS.has(password.toLowerCase())) {
    return { rule: 'password-common', detail: 'this password is on the list of common and breached passwords' };
  }
  if (password.toLowerCase().includes(context.username.toLowerCase())) {
    return { rule: 'password-contains-username', detail: 'a signing password may not contain the username' };
  }
  return null;
}
