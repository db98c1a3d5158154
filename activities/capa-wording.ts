import type { CapaNotice, CapaRef, CapaTaskSubject } from './capa-step';

const named = (capa: CapaRef) => `${capa.number} "${capa.title}"`;

/** The inbox title of a task the run opens: what is to be done, and to which CAPA. */
export function taskTitle(capa: CapaRef, subject: CapaTaskSubject): string {
  const of = named(capa);
  switch (subject.what) {
    case 'triage':
      return `Triage ${of}`;
    case 'containment':
      return `Contain ${of}`;
    case 'investigation':
      return `Investigate and plan ${of}`;
    case 'plan_approval':
      return `Approve the action plan of ${of}`;
    case 'action':
      return `Action ${subject.actionId} (${subject.actionType}) of ${of}`;
    case 'extension':
      return `Extension request for ${subject.actionId} of ${of}`;
    case 'effectiveness':
      return `Verify the effectiveness of ${of}`;
    case 'closure':
      return `Close ${of}`;
  }
}

/** The words of a notification (in-app and email) from the facts the run states. */
export function noticeText(capa: CapaRef, notice: CapaNotice): { title: string; body: string } {
  const { number } = capa;
  const of = named(capa);
  switch (notice.kind) {
    case 'capa.triage':
      return { title: `New CAPA to triage: ${number}`, body: `${of} was raised by ${notice.initiatedBy}.` };
    case 'capa.assigned':
      return { title: `CAPA ${number} assigned to you`, body: `You own ${of}; contain it by ${notice.containBy}.` };
    case 'capa.closed':
      return {
        title: notice.atTriage ? `CAPA ${number} closed at triage` : `CAPA ${number} closed`,
        body: `${of} is closed (${notice.outcome}).`,
      };
    case 'capa.cancelled':
      return { title: `CAPA ${number} cancelled`, body: `${of} was cancelled: ${notice.reason}` };
    case 'capa.reopened':
      return { title: `CAPA ${number} reopened`, body: `${of} was reopened: ${notice.reason}` };
    case 'capa.plan_submitted':
      return { title: `Plan to approve: ${number}`, body: `The action plan of ${of} waits for QA approval.` };
    case 'capa.plan_rejected':
      return { title: `Plan rejected: ${number}`, body: `QA rejected the plan of ${number}: ${notice.comment}` };
    case 'capa.action_assigned':
      return {
        title: `CAPA action ${number}/${notice.actionId}`,
        body: `${notice.actionType} action ${notice.actionId} of ${number}: ${notice.description} — due ${notice.dueAt}.`,
      };
    case 'capa.extension_requested':
      return {
        title: `Extension requested: ${number}/${notice.actionId}`,
        body: `${notice.requestedBy} asks to move ${notice.actionId} of ${number} to ${notice.dueAt}: ${notice.reason}`,
      };
    case 'capa.extension_decided':
      return {
        title: `Extension ${notice.granted ? 'granted' : 'refused'}: ${number}/${notice.actionId}`,
        body: `${notice.actionId} of ${number} is due ${notice.dueAt}: ${notice.reason}`,
      };
    case 'capa.effectiveness_due':
      return {
        title: `Verify effectiveness: ${number}`,
        body: `The waiting period of ${of} is over; record the results against its criteria.`,
      };
    case 'capa.ready_to_close':
      return { title: `Ready to close: ${number}`, body: `${of} passed its effectiveness check and waits for signed closure.` };
    case 'capa.effectiveness_failed':
      return {
        title: `Not effective: ${number}`,
        body: `${number} failed its effectiveness check and is back in investigation: ${notice.comment}`,
      };
    case 'capa.reminder':
      return { title: `Due ${notice.dueAt}: ${number} ${notice.what}`, body: `${notice.what} of ${of} is due at ${notice.dueAt}.` };
    case 'capa.overdue':
      return {
        title: `Overdue: ${number} ${notice.what}`,
        body: `${notice.what} of ${of} was due at ${notice.dueAt} (${notice.holder}).`,
      };
    case 'capa.reassigned':
      return {
        title: `CAPA ${number} reassigned to you`,
        body: `${notice.from} was deactivated; ${notice.moved.join(', ')} of ${number} now rest with you.`,
      };
  }
}
