import type { Context } from 'koa';

/*
 * The text/event-stream format (WHATWG HTML, "Server-sent events"): UTF-8 lines of `field: value`, an event ended by
 * a blank line; a line beginning with a colon is a comment the client ignores.
 */

/** One event. Each line of `data` is its own `data:` field, so a line break in it cannot end the event early. */
export function sseEvent(fields: { id?: string; event?: string; data: string }): string {
  let text = '';
  if (fields.id !== undefined) text += `id: ${singleLine(fields.id)}\n`;
  if (fields.event !== undefined) text += `event: ${singleLine(fields.event)}\n`;
  for (const line of fields.data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
  return `${text}\n`;
}

/** A comment line: keeps the connection busy for proxies and lets the client see that it is alive. */
export const sseComment = (text: string) => `: ${singleLine(text)}\n\n`;

/** How long a client waits before reconnecting after the stream ends or breaks. */
export const sseRetry = (ms: number) => `retry: ${Math.round(ms)}\n\n`;

function singleLine(value: string): string {
  return value.replace(/[\r\n]/g, ' ');
}

/**
 * Headers of an event stream: never cached or transformed (a compressing proxy would hold events back to fill its
 * buffer), and not buffered by nginx-style proxies. The socket stays open as long as the client keeps it.
 */
export function openEventStream(ctx: Context): void {
  ctx.status = 200;
  ctx.type = 'text/event-stream; charset=utf-8';
  ctx.set('Cache-Control', 'no-cache, no-store, no-transform');
  ctx.set('X-Accel-Buffering', 'no');
  ctx.set('Connection', 'keep-alive');
  ctx.req.socket.setTimeout(0);
  ctx.req.socket.setNoDelay(true);
  ctx.req.socket.setKeepAlive(true);
}
