import { maintenanceUrl } from '../../db/knex';

export function databaseName(databaseUrl: string): string {
  return maintenanceUrl(databaseUrl).database || 'labflow';
}

/** The URL without its password, for messages. */
export function describeUrl(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    url.password = '';
    return url.toString();
  } catch {
    return '(an unparsable DATABASE_URL)';
  }
}
