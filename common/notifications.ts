import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { Config } from './config';
import { parseChain, type ChainStep } from './notification-chain';
import type { Actor } from './roles';

/** The channels a notice can take; `digest` is not a channel one chooses but the daily digest a notice waits for. */
export const CHANNELS = ['email', 'in_app', 'slack', 'sms'] as const;
export type Channel = (typeof CHANNELS)[number];
export type DeliveryChannel = Channel | 'digest';

/**
 * `urgent`: SMS and Slack at once (with email and in-app for the record), escalating along the chain until someone
 * acknowledges it. `normal`: the channels each person chose. `digest`: waits for the person's daily digest.
 */
export const PRIORITIES = ['urgent', 'normal', 'digest'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** The channels an urgent notice takes for every person of a step, whatever they chose for normal notices. */
export const URGENT_CHANNELS: readonly Channel[] = ['sms', 'slack', 'email', 'in_app'];
export const DEFAULT_CHANNELS: readonly Channel[] = ['email', 'in_app'];

export interface NoticeSettings {
  /** How long an urgent step waits for an acknowledgement before the next step is told (NOTIFY_ACK_TIMEOUT). */
  ackTimeout: string;
  /** The steps after a notice's own recipients (NOTIFY_ESCALATION_CHAIN). */
  chain: ChainStep[];
  /** First wait after a failed delivery, the longest wait, and how long a delivery is tried at all. */
  retryInitial: string;
  retryMaxInterval: string;
  retryFor: string;
  /** One request to Slack or Twilio (NOTIFY_REQUEST_TIMEOUT). */
  requestTimeout: string;
}

export const DEFAULT_NOTICE_SETTINGS: NoticeSettings = {
  ackTimeout: '15m',
  chain: [{ role: 'qa_manager' }, { role: 'admin' }],
  retryInitial: '10s',
  retryMaxInterval: '10m',
  retryFor: '24h',
  requestTimeout: '10s',
};

export function noticeSettings(config: Config): NoticeSettings {
  return {
    ackTimeout: config.NOTIFY_ACK_TIMEOUT,
    chain: parseChain(config.NOTIFY_ESCALATION_CHAIN) ?? [],
    retryInitial: config.NOTIFY_RETRY_INITIAL,
    retryMaxInterval: config.NOTIFY_RETRY_MAX_INTERVAL,
    retryFor: config.NOTIFY_RETRY_FOR,
    requestTimeout: config.NOTIFY_REQUEST_TIMEOUT,
  };
}

/** Twilio's account, when SID, token and sender number are all set; SMS is off otherwise. */
export function twilioSettings(config: Config): { accountSid: string; authToken: string; fromNumber: string; apiUrl: string } | undefined {
  const { TWILIO_ACCOUNT_SID: accountSid, TWILIO_AUTH_TOKEN: authToken, TWILIO_FROM_NUMBER: fromNumber } = config;
  if (!accountSid || !authToken || !fromNumber) return undefined;
  return { accountSid, authToken, fromNumber, apiUrl: config.TWILIO_API_URL };
}

/** The run of one notice; its input is the notice's ID and nothing else (the activities read the rest). */
export const noticeWorkflowId = (noticeId: string) => `notice:${noticeId}`;

/** What the run of a notice knows, as its query answers it: IDs and states only. */
export interface NoticeRunState {
  noticeId: string;
  priority: Priority | null;
  step: number;
  acknowledged: boolean;
  done: boolean;
}

/** A person acknowledges an urgent notice: the grant is the API's proof that it authenticated them for it. */
export interface AcknowledgeNoticeArgs {
  actor: Actor;
  grant: string;
}
export const acknowledgeNoticeUpdate = defineUpdate<NoticeRunState, [AcknowledgeNoticeArgs]>('acknowledgeNotice');
export const noticeStateQuery = defineQuery<NoticeRunState>('noticeState');

export const NOTICE_ACKNOWLEDGE = 'notice.acknowledge' as const;
export const noticeGrantedArgs = (a: { noticeId: string }) => ({ noticeId: a.noticeId });
