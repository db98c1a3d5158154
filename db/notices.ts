import type { Db } from './knex';

/** A notice with every delivery of it; null when there is none. */
export async function readNotice(db: Db, noticeId: string) {
  const n = await db('notices').where({ id: noticeId }).first();
  if (!n) return null;
  const deliveries = await db('notice_deliveries as d')
    .join('notice_recipients as r', function () {
      this.on('r.notice_id', 'd.notice_id').andOn('r.user_id', 'd.user_id');
    })
    .where('d.notice_id', noticeId)
    .orderBy([{ column: 'r.step' }, { column: 'd.user_id' }, { column: 'd.channel' }])
    .select('d.user_id as userId', 'r.step', 'd.channel', 'd.state', 'd.attempts', 'd.error');
  return {
    id: n.id as string,
    kind: n.kind as string,
    templateVersion: n.template_version as number,
    priority: n.priority as string,
    subjectType: n.subject_type as string,
    subjectId: n.subject_id as string,
    state: n.state as string,
    step: n.step as number,
    acknowledgedBy: (n.acknowledged_by as string | null) ?? null,
    acknowledgedAt: n.acknowledged_at ? new Date(n.acknowledged_at).toISOString() : null,
    createdAt: new Date(n.created_at).toISOString(),
    deliveries,
  };
}
