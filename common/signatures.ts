/** What a signer means by signing (21 CFR 11.50(a)(3)); shown with the signature wherever it is displayed. */
export const SIGNATURE_MEANINGS = ['review', 'approval', 'responsibility', 'authorship', 'verification'] as const;
export type SignatureMeaning = (typeof SIGNATURE_MEANINGS)[number];

/** A signature as the API hands it to a run, after re-authenticating the signer; the password never travels. */
export interface SignatureInput {
  meaning: string;
  /** SHA-256 of what the signer saw; a run refuses it when the signed record has changed since. */
  contentHash: string;
  /** Server UTC time at which the API verified the signer's password. */
  signedAt: string;
}
