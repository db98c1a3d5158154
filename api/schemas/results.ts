import { z } from 'zod';
import { accessionParams } from './sample-intake';
import { signatureBody, text } from './common';

export const analysisListParams = accessionParams;
export const analysisParams = accessionParams.extend({
  test: z.string().regex(/^[A-Z0-9_-]{1,32}$/, 'a test code such as TSH'),
});

const entered = {
  /** Who performed the measurement (a person or an instrument operator ID); not necessarily who types it in. */
  performedBy: text(100),
  /** The instrument's identifier (recorded as given until instruments are managed). */
  instrument: text(64).optional(),
};
export const resultBody = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('numeric'), value: z.number().finite().min(-1e12).max(1e12), unit: text(32), ...entered }),
  z.strictObject({ kind: z.literal('coded'), code: text(64), ...entered }),
  z.strictObject({ kind: z.literal('text'), text: text(4000), ...entered }),
]);
export type ResultBody = z.infer<typeof resultBody>;

export const analysisReasonBody = z.strictObject({ reason: text(1000) });
export const signedBody = z.strictObject({ signature: signatureBody });
export const emptyBody = z.strictObject({});
