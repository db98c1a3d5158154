import type { CapaProof } from '../../activities/capa';
import type { CapaGrantAction, CapaMay } from '../../common/capa-grants';
import type { Proven } from '../../common/capa';
import type { SignatureInput } from '../../common/signatures';

/**
 * The proof a person's request carries to the step that records it: the grant, the arguments it must bind, who
 * may act as the run's state says, and (for a signature) the meaning and hash the password check must have bound.
 */
export function grantProof<A extends Proven>(action: CapaGrantAction, args: A, may: CapaMay, signature?: SignatureInput): CapaProof {
  const { actor, grant, ...rest } = args;
  return {
    kind: 'grant',
    action,
    grant,
    actor,
    args: rest,
    may,
    ...(signature ? { signature: { meaning: signature.meaning, contentHash: signature.contentHash } } : {}),
  };
}
