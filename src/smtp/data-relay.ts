import type { SmtpClient } from '../upstream/smtp-client/client.js';
import type { ClientInput } from './client-input.js';
import { DataScanner } from './data-stream.js';
import { reply, type Reply } from './replies.js';
import { outOfProtocol, upstreamReply } from './upstream-replies.js';

export interface DataLimits {
  hostname: string;
  maxMessageSize: number;
  maxLineLength: number;
  /** The longest wait for the client's next bytes in DATA. */
  dataMs: number;
  /** DATA must keep up this many bytes/s on average beyond `dataMs` (0: no overall deadline). */
  minDataRate: number;
}

export interface Relayed {
  /** What the client gets for its message. */
  reply: Reply;
  /** The session closes after that reply: the client timed out, went away, or sent a bare LF or CR. */
  fatal: boolean;
}

/**
 * Streams one message, after the client got 354, from the client to the next hop as the client
 * sent it (dot-stuffed), then the final dot; the next hop's verdict is what the client gets.
 * A message that cannot be relayed whole is never ended with a dot: the connection is dropped, so
 * the next hop drops the partial message. `tx` gets the size seen and, on failure, the reason.
 */
export async function relayMessage(
  input: ClientInput,
  upstream: SmtpClient,
  tx: { messageSize: number; error?: string },
  limits: DataLimits,
  replyMs: number,
): Promise<Relayed> {
  const scanner = new DataScanner(limits.maxLineLength, limits.maxMessageSize);
  const dropped = (r: Reply, fatal = false): Relayed => {
    upstream.abort();
    return { reply: r, fatal };
  };
  let upstreamOk = true;
  // Postfix's smtpd_min_data_rate: the whole of DATA gets `dataMs`, plus 1 s per `minDataRate`
  // bytes received, so a client trickling bytes cannot hold its slot by resetting a timer.
  const started = performance.now();
  let received = 0;
  for (;;) {
    const deadline = limits.minDataRate > 0 ? started + limits.dataMs + (received * 1000) / limits.minDataRate : Infinity;
    const chunk = await input.readChunk(Math.max(0, Math.min(limits.dataMs, deadline - performance.now())));
    if (chunk === 'timeout') return dropped(reply(421, '4.4.2', `${limits.hostname} timeout exceeded in DATA, closing`), true);
    if (chunk === 'closed') return dropped(reply(451, '4.4.2', 'client closed the connection in DATA'), true);
    received += chunk.length;
    const res = scanner.push(chunk);
    tx.messageSize = scanner.size;
    if (res.fatal) return dropped(reply(521, '5.5.2', `${limits.hostname} bare <LF> or <CR> in message, closing`), true);
    if (res.forward && upstreamOk) {
      if (upstream.closed) upstreamOk = false;
      else if (!upstream.write(res.forward) && !(await upstream.drained(replyMs))) {
        upstreamOk = false;
        upstream.abort();
      }
    }
    if (res.done) {
      input.unshift(res.rest ?? Buffer.alloc(0));
      break;
    }
  }
  if (scanner.spoiled === 'too-big') return dropped(reply(552, '5.3.4', 'message size exceeds fixed limit'));
  if (scanner.spoiled === 'nul') return dropped(reply(554, '5.6.0', 'message contains a NUL character; not relayed'));
  if (scanner.spoiled) {
    return dropped(reply(554, '5.6.0', `message has a line longer than ${limits.maxLineLength} characters; not relayed`));
  }
  if (!upstreamOk || upstream.closed) {
    tx.error = `lost the connection to ${upstream.label} in DATA`;
    return dropped(reply(451, '4.4.2', `lost the connection to ${upstream.label} in DATA; try again later`));
  }
  const r = await upstreamReply(tx, upstream, upstream.endData());
  return { reply: r.code >= 300 && r.code < 400 ? outOfProtocol(tx, upstream, 'the end of data', r.code) : r, fatal: false };
}
