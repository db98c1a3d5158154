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


/** A model's answer that passes validation: every value as the certificate writes it. */
export function goodAnswer(text: string): string {
  const lot = /Lot No\.: (\S+)/.exec(text)![1];
  return JSON.stringify({
    supplier: 'Acme Reagents GmbH',
    product: 'Sodium chloride, ACS grade',
    lotNumber: lot,
    expiryDate: '2028-03-31',
    parameters: [
      { name: 'Assay', result: '99.7 %', specification: '>= 99.0 %' },
      { name: 'pH (5 % solution)', result: '6.4', specification: '5.0 - 9.0' },
      { name: 'Loss on drying', result: '0.05 %', specification: '<= 0.2 %' },
    ],
  });
}
