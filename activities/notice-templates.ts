/**
 * The words of notices, versioned: a notice records its kind and the version it was written with, so a notice
 * written before a wording changed is still rendered (on a retry, on the next escalation step) as it began. A new
 * wording is a new version beside the old; old versions stay while notices written with them may still be open.
 * Rendering happens in the activity that sends: runs carry only the notice's ID.
 */
export interface NoticeFacts {
  kind: string;
  priority: string;
  subjectType: string;
  subjectId: string;
  facts: Record<string, unknown>;
  link: string | null;
}

export interface RenderedNotice {
  title: string;
  /** Email and in-app. */
  body: string;
  /** SMS and Slack: short, the record's reference and where to act, nothing more. */
  short: string;
}

type Template = (n: NoticeFacts) => RenderedNotice;

const str = (v: unknown, fallback = '') => (typeof v === 'string' ? v : fallback);
const urgentPrefix = (n: NoticeFacts) => (n.priority === 'urgent' ? 'URGENT ' : '');
const actOn = (n: NoticeFacts) => (n.link ? ` ${n.link}` : '');

const TEMPLATES: Record<string, Record<number, Template>> = {
  'task.escalated': {
    1: (n) => {
      const title = `Escalated: ${str(n.facts.title, `${n.subjectType} ${n.subjectId}`)}`;
      return {
        title,
        body: `"${str(n.facts.title)}" (${str(n.facts.entityType)} ${str(n.facts.entityId)}) is overdue since ${str(n.facts.dueAt)}.`,
        short: `labflow ${urgentPrefix(n)}${str(n.facts.entityType)} ${str(n.facts.entityId)} overdue task escalated. Acknowledge:${actOn(n)}`,
      };
    },
  },
  'sample.rejected': {
    1: (n) => {
      const tests = Array.isArray(n.facts.tests) ? n.facts.tests.map(String) : [];
      const accession = str(n.facts.accession, n.subjectId);
      return {
        title: `Specimen ${accession} rejected${n.facts.full === false ? ` for ${tests.join(', ')}` : ''}: ${str(n.facts.reason)}`,
        body: `Specimen ${accession} was rejected (${str(n.facts.code)} ${str(n.facts.reason)}: ${str(n.facts.condition)}); disposition: ${str(n.facts.disposition)}. Please recollect for ${tests.join(', ')}.`,
        short: `labflow ${urgentPrefix(n)}specimen ${accession} rejected (${str(n.facts.code)}), recollect. Acknowledge:${actOn(n)}`,
      };
    },
  },
  'capa.overdue': {
    // The title and body are worded by the CAPA's own wording (capa-wording.ts) when the notice is written.
    1: (n) => ({
      title: str(n.facts.title, `Overdue: ${n.subjectId}`),
      body: str(n.facts.body),
      short: `labflow ${urgentPrefix(n)}CAPA ${str(n.facts.capaNumber, n.subjectId)} ${str(n.facts.what)} overdue. Acknowledge:${actOn(n)}`,
    }),
  },
  'booking.approval_overdue': {
    1: (n) => ({
      title: `${urgentPrefix(n)}Booking of instrument ${str(n.facts.instrument)} awaits approval`,
      body: `A booking of instrument ${str(n.facts.instrument)} has waited past its approval deadline for tier ${String(n.facts.tier ?? 1)} approval. Approve or reject it.`,
      short: `labflow ${urgentPrefix(n)}booking of ${str(n.facts.instrument)} awaits approval:${actOn(n)}`,
    }),
  },
  'critical_call.escalated': {
    // The accession and the test only: the value is read in labflow (an access event), never sent on a channel.
    1: (n) => {
      const what = `${str(n.facts.test)} of ${str(n.facts.accession, n.subjectId)}`;
      const why =
        n.facts.reason === 'no_ordering_provider'
          ? 'the requisition names no ordering provider'
          : n.facts.reason === 'deadline'
            ? 'nobody read it back within the time allowed'
            : `${String(n.facts.attempts ?? '?')} attempts did not reach anyone who read it back`;
      return {
        title: `Critical value not yet read back: ${what}`,
        body: `The critical value of ${what} has not been read back by the ordering provider: ${why}. Please call and log the attempt.`,
        short: `labflow ${urgentPrefix(n)}critical value ${what} not read back, call needed:${actOn(n)}`,
      };
    },
  },
  'critical_call.withdrawn': {
    // Why the call was withdrawn and what the lab owes the person reached, never the value.
    1: (n) => {
      const what = `${str(n.facts.test)} of ${str(n.facts.accession, n.subjectId)}`;
      const why =
        n.facts.reason === 'not_critical'
          ? 'the result was edited to a value that is not critical'
          : n.facts.reason === 'retested'
            ? 'a retest of the result was reported (its own value is called if it is critical)'
            : `the result was ${str(n.facts.reason, 'withdrawn')}`;
      const owed = n.facts.reached
        ? 'An attempt had reached someone: call them back and tell them the critical value no longer stands.'
        : 'The lab director had been called in; no further call is needed.';
      return {
        title: `Critical-value call withdrawn: ${what}`,
        body: `The critical-value call for ${what} was withdrawn before anyone read the value back: ${why}. ${owed}`,
        short: `labflow ${urgentPrefix(n)}critical-value call ${what} withdrawn${n.facts.reached ? ', call back whoever was reached' : ''}:${actOn(n)}`,
      };
    },
  },
  'audit.chain_broken': {
    1: (n) => ({
      title: 'Audit trail verification failed',
      body: `The audit trail cannot be trusted: ${str(n.facts.problem)}. Nothing was sealed or anchored until this is investigated.`,
      short: `labflow ${urgentPrefix(n)}audit trail verification failed at event ${str(n.facts.seq, '?')}. Acknowledge:${actOn(n)}`,
    }),
  },
};

/** The version a new notice of this kind is written with. */
export function currentTemplateVersion(kind: string): number {
  const versions = Object.keys(TEMPLATES[kind] ?? {}).map(Number);
  if (!versions.length) throw new Error(`no notice template for ${kind}`);
  return Math.max(...versions);
}

export function renderNotice(n: NoticeFacts, version: number): RenderedNotice {
  const template = TEMPLATES[n.kind]?.[version];
  if (!template) throw new Error(`no notice template ${n.kind} v${version}`);
  return template(n);
}
