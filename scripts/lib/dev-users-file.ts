import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SeededUser } from '../../db/seed-dev-users';

/**
 * A plain JSON array of the seeded users (the README's curl walk-through reads it as such). Written under a
 * temporary name and renamed, so the file is never seen half-written or with a wider mode than 0600.
 */
export function writeDevUsersFile(path: string, users: SeededUser[]): void {
  mkdirSync(dirname(path), { recursive: true });
  const scratch = `${path}.${process.pid}.tmp`;
  rmSync(scratch, { force: true });
  writeFileSync(scratch, `${JSON.stringify(users, null, 2)}\n`, { mode: 0o600 });
  renameSync(scratch, path);
}

/** Who the seeded users are, without their API keys or signing passwords (those are in the file alone). */
export function devUsersTable(users: SeededUser[]): string {
  const header = ['username', 'roles'];
  const rows = users.map((u) => [u.username, u.roles.join(',')]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => `  ${cells.map((cell, column) => cell.padEnd(widths[column])).join('  ')}`.trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
