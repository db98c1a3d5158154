import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SeededUser } from '../../db/seed-dev-users';

/** Written to a temporary name and renamed, so the file is never seen half-written or with a wider mode. */
export function writeDevUsersFile(path: string, users: SeededUser[], apiUrl: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const scratch = `${path}.${process.pid}.tmp`;
  rmSync(scratch, { force: true });
  const content = {
    note: 'Development users created by npm start: each has an API key, and a password to sign with. Keep this file private.',
    apiUrl,
    createdAt: new Date().toISOString(),
    users,
  };
  writeFileSync(scratch, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  renameSync(scratch, path);
}

export function devUsersTable(users: SeededUser[]): string {
  const header = ['username', 'roles', 'API key', 'signing password'];
  const rows = users.map((u) => [u.username, u.roles.join(','), u.apiKey, u.password]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => `  ${cells.map((cell, column) => cell.padEnd(widths[column])).join('  ')}`.trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
