import type { Knex } from 'knex';
import { assigneeKey, type AssigneeRef } from '../common/assignees';
import { SAMPLE_WORK_RECEIVER, type DeactivatedUser } from '../common/deactivation';
import { appendAudit } from '../db/audit';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import { handOverTasks, userIsInactive } from '../db/tasks';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { Refusal } from './lib/grant-checks';
import type { SampleRef } from './sample-intake';
import { sampleProofChecks } from './sample-proof';


/**
 * Whom a sample's notices and recollection requests go to: its submitter while Postgres shows them active, else
 * the lab director as a role (a deactivated submitter's work was handed over, or is about to be).
 */
export async function activeSubmitter(trx: Knex.Transaction, submitter: AssigneeRef | null): Promise<AssigneeRef> {
  if (!submitter) return { kind: 'role', role: 'clinician' };
  if (submitter.kind === 'user' && (await userIsInactive(trx, submitter.userId))) return SAMPLE_WORK_RECEIVER;
  return submitter;
}

export function sampleHandOverActivities(deps: ActivityDeps) {
  const { publicUrl, mailDomain } = deps;
  const { recording } = sampleProofChecks(deps);

  return {
    /**
     * A deactivated submitter's open tasks in a sample's run (recollection requests) go to the lab director as a
     * role, who arranges the recollection with a clinician of the lab's choosing; the lab directors are told.
     * Believed only when Postgres shows the user inactive: a notice about an active user is refused as a
     * security event and changes nothing.
     */
    async handOverSampleWorkOfDeactivated(p: { ref: SampleRef; user: DeactivatedUser }): Promise<{ outboxIds: string[]; tasks: string[] }> {
      return recording(p.ref, 'sample.user_deactivated_signal', async (trx) => {
        if (!(await userIsInactive(trx, p.user.userId))) throw new Refusal('not_from_labflow', p.user.userId.slice(0, 64));
        const to = SAMPLE_WORK_RECEIVER;
        const tasks = await handOverTasks(trx, {
          workflowId: p.ref.workflowId,
          userId: p.user.userId,
          to,
          keyOf: (key) => `${key}>${assigneeKey(to)}`,
        });
        await appendAudit(trx, {
          actor: 'system:sample-intake',
          action: 'sample.work_handed_over',
          entityType: 'sample',
          entityId: p.ref.accession,
          details: { workflowId: p.ref.workflowId, from: `user:${p.user.username}`, to: assigneeKey(to), tasks, reason: 'user deactivated' },
          idempotencyKey: activityKey(),
        });
        if (!tasks.length) return { outboxIds: [], tasks };
        const outboxIds = await queueNotifications(
          trx,
          await resolveRecipients(trx, [to]),
          {
            idempotencyKey: activityKey('notice'),
            kind: 'sample.work_handed_over',
            title: `Recollection handed over: specimen ${p.ref.accession}`,
            body:
              `${p.user.username}, who submitted specimen ${p.ref.accession}, was deactivated. Their open recollection ` +
              'request now rests with the lab director, who arranges the recollection with another clinician.',
            link: `${publicUrl}/api/v1/samples/${p.ref.accession}`,
          },
          mailDomain,
        );
        return { outboxIds, tasks };
      });
    },
  };
}
