import { durationMs } from '../../common/durations';
import type { InstrumentState, MaintenancePlanRef } from '../../common/equipment';

/** The key a sent reminder is kept under: the certificate it is about and the lead time. */
export const reminderKey = (certificateId: string, leadTime: string) => `${certificateId}:${leadTime}`;

/** Whether the current certificate has ended and the run has not yet taken the instrument out of service for it. */
export function expiryOwed(s: InstrumentState, now: number): boolean {
  return s.state !== 'retired' && !!s.certificate && now >= Date.parse(s.certificate.validTo) && !s.reasons.includes('calibration_expired');
}

/**
 * The lead times whose reminder about the current certificate has come and not been sent. A certificate recorded
 * with less validity left than a lead time owes that reminder at once (it expires within it); after its end none.
 */
export function remindersOwed(s: InstrumentState, now: number): string[] {
  const cert = s.certificate;
  if (!cert || s.state === 'retired' || now >= Date.parse(cert.validTo)) return [];
  return s.reminderBefore.filter(
    (lead) => now >= Date.parse(cert.validTo) - durationMs(lead) && !s.remindersSent.includes(reminderKey(cert.id, lead)),
  );
}

/** Maintenance plans whose due date has come, not yet announced and not done. */
export function plansDue(s: InstrumentState, now: number): MaintenancePlanRef[] {
  if (s.state === 'retired') return [];
  return s.plans.filter((p) => !p.notified && !p.done && now >= Date.parse(p.dueAt));
}

/** How long to sleep until the next thing falls due (null: nothing is scheduled). */
export function sleepFor(s: InstrumentState, now: number): number | null {
  if (s.state === 'retired') return null;
  const moments: number[] = [];
  const cert = s.certificate;
  if (cert) {
    const end = Date.parse(cert.validTo);
    if (!s.reasons.includes('calibration_expired')) moments.push(end);
    for (const lead of s.reminderBefore) {
      if (!s.remindersSent.includes(reminderKey(cert.id, lead))) moments.push(end - durationMs(lead));
    }
  }
  for (const p of s.plans) if (!p.notified && !p.done) moments.push(Date.parse(p.dueAt));
  const future = moments.filter((m) => m > now);
  return future.length ? Math.min(...future) - now : null;
}
