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

/** One next hop the message goes to, and the record its failure is written to. */
export interface RelayTarget {
  upstream: SmtpClient;
  tx: { messageSize: number; error?: string };
}

export interface Relayed {
  /** What each target's next hop said of the message (or why it could not), in `targets` order. */
  replies: Reply[];
  /** The session closes after the reply: the client timed out, went away, or sent a bare LF or CR. */
  fatal: boolean;
}

/**
 * Streams one message, after the client got 354, from the client to every target as the client
 * sent it (dot-stuffed), then the final dot to each; each next hop's verdict is its reply. The
 * client is read no faster than the slowest target takes it, so memory stays bounded; a target
 * that takes nothing for `replyMs` is dropped and the others go on. A message that cannot be
 * relayed whole is never ended with a dot: the connection is dropped, so the next hop drops the
 * partial message. Each target's `tx` gets the size seen and, on failure, the reason.
 */
export async function relayMessage(input: ClientInput, targets: RelayTarget[], limits: DataLimits, replyMs: number): Promise<Relayed> {
  const scanner = new DataScanner(limits.maxLineLength, limits.maxMessageSize);
  const dropped = (r: Reply, fatal = false): Relayed => {
    for (const t of targets) t.upstream.abort();
    return { replies: targets.map(() => r), fatal };
  };
  const ok = targets.map(() => true);
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
    for (const t of targets) t.tx.messageSize = scanner.size;
    if (res.fatal) return dropped(reply(521, '5.5.2', `${limits.hostname} bare <LF> or <CR> in message, closing`), true);
    if (res.forward) await forward(targets, ok, res.forward, replyMs);
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
  const replies = await Promise.all(
    targets.map(async ({ upstream, tx }, i): Promise<Reply> => {
      if (!ok[i] || upstream.closed) {
        tx.error = `lost the connection to ${upstream.label} in DATA`;
        upstream.abort();
        return reply(451, '4.4.2', `lost the connection to ${upstream.label} in DATA; try again later`);
      }
      const r = await upstreamReply(tx, upstream, upstream.endData());
      return r.code >= 300 && r.code < 400 ? outOfProtocol(tx, upstream, 'the end of data', r.code) : r;
    }),
  );
  return { replies, fatal: false };
}

/** Bytes to every target still going; waits until each has taken them (or is dropped for not taking them within `replyMs`). */
async function forward(targets: RelayTarget[], ok: boolean[], bytes: Buffer, replyMs: number): Promise<void> {
  const waits: Array<Promise<void>> = [];
  for (const [i, { upstream }] of targets.entries()) {
    if (!ok[i]) continue;
    if (upstream.closed) ok[i] = false;
    else if (!upstream.write(bytes)) {
      waits.push(
        upstream.drained(replyMs).then((drained) => {
          if (drained) return;
          ok[i] = false;
          upstream.abort();
        }),
      );
    }
  }
  await Promise.all(waits);
}
