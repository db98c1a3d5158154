import type { Knex } from 'knex';
import { newApiKey } from './identity';

export type ApiKeyState = 'active' | 'expired' | 'revoked';

export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  replacedBy: string | null;
  state: ApiKeyState;
}

interface ApiKeyRow {
  id: string;
  user_id: string;
  label: string;
  prefix: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
  replaced_by: string | null;
}

const COLUMNS = ['id', 'user_id', 'label', 'prefix', 'created_at', 'expires_at', 'last_used_at', 'revoked_at', 'replaced_by'];

export function keyState(row: Pick<ApiKeyRow, 'revoked_at' | 'expires_at'>, now = new Date()): ApiKeyState {
  if (row.revoked_at) return 'revoked';
  if (row.expires_at && row.expires_at <= now) return 'expired';
  return 'active';
}

export function apiKeyView(row: ApiKeyRow): ApiKeyView {
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    id: row.id,
    name: row.label,
    prefix: row.prefix,
    createdAt: row.created_at.toISOString(),
    expiresAt: iso(row.expires_at),
    lastUsedAt: iso(row.last_used_at),
    revokedAt: iso(row.revoked_at),
    replacedBy: row.replaced_by,
    state: keyState(row),
  };
}

export async function listApiKeys(db: Knex, userId: string): Promise<ApiKeyView[]> {
  const rows: ApiKeyRow[] = await db('api_keys').where({ user_id: userId }).orderBy('created_at').select(COLUMNS);
  return rows.map(apiKeyView);
}

/** The user's key, locked for a change; undefined when it is not theirs or does not exist. */
export async function lockApiKey(trx: Knex.Transaction, userId: string, keyId: string): Promise<ApiKeyRow | undefined> {
  return trx('api_keys').where({ id: keyId, user_id: userId }).forNoKeyUpdate().first(COLUMNS);
}

/** Keys that still work and are not on their way out after a rotation. */
export async function liveKeys(trx: Knex.Transaction, userId: string): Promise<Pick<ApiKeyRow, 'id' | 'label'>[]> {
  return trx('api_keys')
    .where({ user_id: userId })
    .whereNull('revoked_at')
    .whereNull('replaced_by')
    .where((q) => q.whereNull('expires_at').orWhere('expires_at', '>', trx.fn.now()))
    .select('id', 'label');
}

export async function insertApiKey(
  trx: Knex.Transaction,
  userId: string,
  name: string,
  expiresAt: Date,
): Promise<{ view: ApiKeyView; key: string }> {
  const created = newApiKey();
  const [row] = await trx('api_keys')
    .insert({ user_id: userId, prefix: created.prefix, key_hash: created.hash, label: name, expires_at: expiresAt })
    .returning(COLUMNS);
  return { view: apiKeyView(row), key: created.key };
}

export async function updateApiKey(
  trx: Knex.Transaction,
  keyId: string,
  change: { revoked_at?: Knex.Raw | Date; expires_at?: Date; replaced_by?: string },
): Promise<ApiKeyView> {
  const [row] = await trx('api_keys').where({ id: keyId }).update(change).returning(COLUMNS);
  return apiKeyView(row);
}
