import type { Context } from 'koa';
import { problems } from './problem';

/** Reads a JSON body within the size limit; the parsed value is validated by the route's schema afterwards. */
export async function readJsonBody(ctx: Context, limitBytes: number): Promise<unknown> {
  const length = Number(ctx.get('content-length') || 0);
  if (length > limitBytes) throw problems.tooLarge(limitBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) throw problems.tooLarge(limitBytes);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  if (!ctx.is('application/json', 'application/*+json')) throw problems.unsupportedMediaType();
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    // Node's message quotes the text around the error, which may be patient data: say only where it is.
    const position = /position (\d+)/.exec((err as Error).message)?.[1];
    throw problems.malformedJson(position ? `invalid JSON at position ${position}` : 'invalid JSON');
  }
}
