import { randomBytes } from 'node:crypto';

/** A certificate as suppliers send them: labelled header lines and a results table. */
export function certificate(lot = `L${randomBytes(3).toString('hex').toUpperCase()}`): string {
  return [
    'CERTIFICATE OF ANALYSIS',
    'Supplier: Acme Reagents GmbH',
    'Product: Sodium chloride, ACS grade',
    `Lot No.: ${lot}`,
    'Expiry Date: 2028-03-31',
    '',
    'Test | Result | Specification',
    'Assay | 99.7 % | >= 99.0 %',
    'pH (5 % solution) | 6.4 | 5.0 - 9.0',
    'Loss on drying | 0.05 % | <= 0.2 %',
  ].join('\n');
}

