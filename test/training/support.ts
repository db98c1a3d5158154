import { signOffGrantedArgs } from '../../common/training';

/** What a sign-off's grant binds for this signature, as the API writes it. */
export const grantedTrainingSignOff = (signature: { meaning: string; contentHash: string; signedAt: string }) => signOffGrantedArgs({ signature });
