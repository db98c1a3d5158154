import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import { renderNotice } from './notice-templates';
import { noticeFacts, type NoticeRow } from './notice-writer';

/** The digestible notices waiting for a person's next digest, worded by their templates. */
export async function digestNotices(db: Db, userId: string): Promise<{ noticeId: string; title: string; link: string | null }[]> {
  const rows: NoticeRow[] = await db('notice_deliveries as d')
    .join('notices as n', 'n.id', 'd.notice_id')
    .where({ 'd.user_id': userId, 'd.channel': 'digest', 'd.state': 'pending' })
    .orderBy('n.created_at')
    .limit(50)
    .select('n.*');
  return rows.map((n) => ({ noticeId: n.id, title: renderNotice(noticeFacts(n), n.template_version).title, link: n.link }));
}

/** Marks the notices a digest carries as sent, in the digest's own transaction. */
export async function markDigested(trx: Knex.Transaction, userId: string, notices: { noticeId: string }[]): Promise<void> {
  if (!notices.length) return;
  await trx('notice_deliveries')
    .where({ user_id: userId, channel: 'digest', state: 'pending' })
    .whereIn(
      'notice_id',
      notices.map((n) => n.noticeId),
    )
    .update({ state: 'sent', sent_at: trx.fn.now(), updated_at: trx.fn.now() });
}
