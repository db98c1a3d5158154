import type { ReceivedMail } from '../helpers/smtp-sink';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

/** The enrolment token in the newest enrolment email to this address, as the person reads it. */
export async function enrolmentTokenMailedTo(address: string, after = 0): Promise<string> {
  const mail: ReceivedMail = await waitFor(
    () =>
      testEnv()
        .mails.slice(after)
        .reverse()
        .find((m) => m.to.includes(address) && m.subject?.includes('Set your signing password')),
    `the enrolment email to ${address}`,
  );
  const token = /lfe_[A-Za-z0-9_-]{43}/.exec(mail.raw.replace(/=\r?\n/g, ''))?.[0];
  if (!token) throw new Error('no enrolment token in the email');
  return token;
}

/** A password no list holds, long enough for any policy here. */
export const freshPassword = (label: string) => `${label}-${Math.random().toString(36).slice(2)}-Vq7!x`;
