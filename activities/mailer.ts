import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';

export interface OutgoingMail {
  messageId: string;
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

/**
 * How the relay is reached (SMTP_TLS): `auto` as the URL says (smtps:// is TLS from the start; smtp:// upgrades
 * with STARTTLS when the relay offers it), `starttls` refuses to send unless the relay upgrades, `implicit` is TLS
 * from the first byte. The relay's certificate is checked against `caFile` (SMTP_TLS_CA_FILE) when given.
 */
export interface SmtpTls {
  mode: 'auto' | 'starttls' | 'implicit';
  caFile?: string;
}

/** The transport's URL and options for SMTP_TLS: nodemailer takes TLS from the URL's scheme over its options. */
export function smtpTransportOptions(smtpUrl: string, tls: SmtpTls | undefined) {
  const url = new URL(smtpUrl);
  if (tls?.mode === 'implicit') url.protocol = 'smtps:';
  return {
    url: url.toString(),
    ...(tls?.mode === 'starttls' ? { requireTLS: true } : {}),
    ...(tls?.caFile ? { tls: { ca: readFileSync(tls.caFile, 'utf8') } } : {}),
  };
}

/**
 * SMTP when a URL is configured; otherwise each message is written as an .eml file under the outbox directory,
 * so a developer can open what would have been sent.
 */
export function createMailer(options: { smtpUrl?: string; from: string; outboxDir: string; tls?: SmtpTls }): Mailer {
  if (options.smtpUrl) {
    // Bounded well inside the delivery activity's timeout, so a stuck relay fails the attempt instead of hanging it.
    const transport = nodemailer.createTransport({
      ...smtpTransportOptions(options.smtpUrl, options.tls),
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
    });
    return {
      async send(mail) {
        await transport.sendMail({ from: options.from, to: mail.to, subject: mail.subject, text: mail.text, messageId: mail.messageId });
      },
      close: () => transport.close(),
    };
  }
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    async send(mail) {
      const info = await transport.sendMail({
        from: options.from,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        messageId: mail.messageId,
      });
      await mkdir(options.outboxDir, { recursive: true });
      const name = mail.messageId.replace(/[<>]/g, '').replace(/[^A-Za-z0-9.@_-]/g, '_');
      await writeFile(join(options.outboxDir, `${name}.eml`), info.message as Buffer);
    },
    close: () => transport.close(),
  };
}
