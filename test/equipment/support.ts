import { createHash, randomBytes } from 'node:crypto';
import type { Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';

/** An instrument code of the test's own, so no other test sees it. */
export const instrumentCode = () => `EQ-${randomBytes(4).toString('hex').toUpperCase()}`;
export const sha = (text: string) => createHash('sha256').update(text).digest('hex');
export const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();

/** The people the equipment tests need: QA, the lab director, two technicians. */
export const equipmentUsers = () =>
  makeUsers({ qa: ['qa_manager'], director: ['lab_director'], tech: ['lab_technician'], tech2: ['lab_technician'], doc: ['clinician'] });
export type EquipmentUsers = Awaited<ReturnType<typeof equipmentUsers>>;

export const instrumentUrl = (code: string, action = '') => `/api/v1/instruments/${code}${action ? `/${action}` : ''}`;

export async function register(p: Platform, qa: TestUser, code: string, extra: Record<string, unknown> = {}) {
  const res = await p.api('POST', '/api/v1/instruments', {
    key: qa.apiKey,
    body: { code, name: 'Immunoassay analyser', manufacturer: 'Roche', model: 'cobas e 411', serialNumber: `SN-${code}`, location: 'Chemistry bench 2', softwareVersion: '3.1', ...extra },
  });
  if (res.status !== 202) throw new Error(`register answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export const act = (p: Platform, user: TestUser, code: string, action: string, body: unknown = {}) =>
  p.api('POST', instrumentUrl(code, action), { key: user.apiKey, body });

export async function mustAct(p: Platform, user: TestUser, code: string, action: string, body: unknown = {}) {
  const res = await act(p, user, code, action, body);
  if (res.status !== 200) throw new Error(`${action} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function read(p: Platform, user: TestUser, code: string) {
  const res = await p.api('GET', instrumentUrl(code), { key: user.apiKey });
  if (res.status !== 200) throw new Error(`read answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A certificate valid from now to `validTo`, prepared by `preparer`, reviewed and signed by `reviewer`. */
export function certificate(preparer: TestUser, reviewer: TestUser, validTo: string, number = `CAL-${randomBytes(3).toString('hex')}`) {
  const documentHash = sha(`certificate ${number}`);
  return {
    certificateNumber: number,
    validFrom: new Date(Date.now() - 60_000).toISOString(),
    validTo,
    documentHash,
    results: 'All channels within tolerance; no correction applied.',
    preparedBy: preparer.username,
    signature: { password: reviewer.password, meaning: 'review', contentHash: documentHash },
  };
}

export const verification = { verification: { summary: 'Two levels of control within limits after the intervention', documentHash: sha('verification') } };

/** Registered, calibrated until `validTo` and verified into service. */
export async function inService(p: Platform, u: EquipmentUsers, code: string, validTo: string, extra: Record<string, unknown> = {}) {
  await register(p, u.qa, code, extra);
  await mustAct(p, u.qa, code, 'calibrations', certificate(u.tech, u.qa, validTo));
  return mustAct(p, u.qa, code, 'return-to-service', verification);
}
