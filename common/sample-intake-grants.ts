import type {
  AliquotArgs,
  AttachOrderArgs,
  CancelArgs,
  DeviationArgs,
  InspectArgs,
  ReceiptArgs,
  RejectArgs,
  RouteArgs,
  StoreArgs,
} from './sample-intake';

/**
 * Sample intake's person actions and what a grant for each binds. Bundle-safe: the API builds the bound arguments
 * when it writes the grant, the recording activity builds them again from the request the run was sent, and both
 * hash the same object. Anything else in a request (the actor's display fields) is not bound.
 */

export const SAMPLE_ACTIONS = [
  'sample.receive',
  'sample.inspect',
  'sample.accept',
  'sample.accept_with_deviation',
  'sample.reject',
  'sample.aliquot',
  'sample.store',
  'sample.route',
  'sample.cancel',
  'sample.reinstate',
  'sample.attach_order',
] as const;
export type SampleAction = (typeof SAMPLE_ACTIONS)[number];

const orNull = <T>(value: T | undefined): T | null => (value === undefined ? null : value);

export const sampleGrantedArgs = {
  /** The receipt time is the API's clock, so it is bound with the rest. */
  receive: (a: Omit<ReceiptArgs, 'actor' | 'by'>) => ({
    receivedAt: a.receivedAt,
    location: a.location,
    temperatureC: orNull(a.temperatureC),
    collectedAt: orNull(a.collectedAt),
    condition: orNull(a.condition),
  }),
  /** The identifiers arrive already compared by the API: only their count and verdict are bound (no PHI). */
  inspect: ({ findings: f }: Pick<InspectArgs, 'findings'>) => ({
    findings: {
      identifiers: { count: f.identifiers.count, matchRequisition: f.identifiers.matchRequisition },
      container: f.container,
      preservative: f.preservative,
      volumeMl: f.volumeMl,
      temperatureC: f.temperatureC,
      hemolyzed: f.hemolyzed,
      clotted: f.clotted,
    },
  }),
  accept: () => ({}),
  acceptWithDeviation: (a: Pick<DeviationArgs, 'comment' | 'signature'>) => ({
    comment: a.comment,
    signature: { meaning: a.signature.meaning, contentHash: a.signature.contentHash, signedAt: a.signature.signedAt },
  }),
  reject: (a: Omit<RejectArgs, 'actor' | 'grant'>) => ({
    code: a.code,
    condition: a.condition,
    disposition: a.disposition,
    comment: orNull(a.comment),
    tests: orNull(a.tests),
  }),
  aliquot: (a: Pick<AliquotArgs, 'volumesMl'>) => ({ volumesMl: a.volumesMl }),
  store: (a: Omit<StoreArgs, 'actor' | 'grant'>) => ({
    piece: a.piece,
    freezer: a.freezer,
    rack: a.rack,
    box: a.box,
    position: a.position,
  }),
  route: (a: Pick<RouteArgs, 'tests'>) => ({ tests: a.tests ? a.tests.map(({ test, piece }) => ({ test, piece })) : null }),
  cancel: (a: Pick<CancelArgs, 'reason'>) => ({ reason: a.reason }),
  reinstate: (a: Pick<CancelArgs, 'reason'>) => ({ reason: a.reason }),
  attachOrder: (a: Pick<AttachOrderArgs, 'tests'>) => ({ tests: a.tests }),
};

/** The bound arguments of an action, from the request as the run received it. */
export function boundSampleArgs(action: SampleAction, request: unknown): unknown {
  const r = request as never;
  switch (action) {
    case 'sample.receive':
      return sampleGrantedArgs.receive(r);
    case 'sample.inspect':
      return sampleGrantedArgs.inspect(r);
    case 'sample.accept':
      return sampleGrantedArgs.accept();
    case 'sample.accept_with_deviation':
      return sampleGrantedArgs.acceptWithDeviation(r);
    case 'sample.reject':
      return sampleGrantedArgs.reject(r);
    case 'sample.aliquot':
      return sampleGrantedArgs.aliquot(r);
    case 'sample.store':
      return sampleGrantedArgs.store(r);
    case 'sample.route':
      return sampleGrantedArgs.route(r);
    case 'sample.cancel':
      return sampleGrantedArgs.cancel(r);
    case 'sample.reinstate':
      return sampleGrantedArgs.reinstate(r);
    case 'sample.attach_order':
      return sampleGrantedArgs.attachOrder(r);
  }
}

/** The roles that may take each action (an admin may take any); clinicians only on samples they submitted. */
export const LAB_ROLES = ['lab_technician', 'lab_director'] as const;
export const SAMPLE_ACTION_ROLES: Record<SampleAction, readonly string[]> = {
  'sample.receive': LAB_ROLES,
  'sample.inspect': LAB_ROLES,
  'sample.accept': LAB_ROLES,
  'sample.accept_with_deviation': ['lab_director'],
  'sample.reject': LAB_ROLES,
  'sample.aliquot': LAB_ROLES,
  'sample.store': LAB_ROLES,
  'sample.route': LAB_ROLES,
  'sample.cancel': [...LAB_ROLES, 'clinician'],
  'sample.reinstate': LAB_ROLES,
  'sample.attach_order': [...LAB_ROLES, 'clinician'],
};

/**
 * Whether a person with these roles may take the action on a sample submitted by `submitterId`: lab roles (and
 * admins) on any sample, a clinician only on a sample they submitted.
 */
export function maySampleAction(action: SampleAction, user: { id: string; roles: readonly string[] }, submitterId: string | null): boolean {
  if (user.roles.includes('admin')) return true;
  const allowed = SAMPLE_ACTION_ROLES[action];
  if (LAB_ROLES.some((role) => allowed.includes(role) && user.roles.includes(role))) return true;
  return allowed.includes('clinician') && user.roles.includes('clinician') && submitterId !== null && submitterId === user.id;
}
