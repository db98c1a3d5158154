import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { alertDelivery, externalWrite, mailDelivery, shortTransaction } from './activity-options';

/** Activities named for what they reach: one short Postgres transaction each. */
export const db = proxyActivities<Activities>(shortTransaction);
/** Delivery of outbox emails through the SMTP relay. */
export const mail = proxyActivities<Activities>(mailDelivery);
/** Operator alerts by email: a bounded wait. */
export const alerts = proxyActivities<Activities>(alertDelivery);
/** Writes to the ERP. */
export const erp = proxyActivities<Activities>(externalWrite);
