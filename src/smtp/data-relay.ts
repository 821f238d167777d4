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

/** Where the message is also written as it streams (the spool's body file): awaited, so memory stays bounded. */
export interface BodySink {
  write(bytes: Buffer): Promise<void>;
}

export interface RelayOptions {
  sink?: BodySink;
  /**
   * The SMTP front's order for several next hops: the final dot to the first target alone, and only
   * when it said 2xx to the others; a refusal there aborts the others before their dot (each gets
   * the first's reply), so the client can be given that one refusal for the whole message.
   */
  commitFirst?: boolean;
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
export async function relayMessage(
  input: ClientInput,
  targets: RelayTarget[],
  limits: DataLimits,
  replyMs: number,
  opts: RelayOptions = {},
): Promise<Relayed> {
  const scanner = new DataScanner(limits.maxLineLength, limits.maxMessageSize);
  const dropped = (r: Reply, fatal = false): Relayed => {
    for (const t of targets) t.upstream.abort();
    return { replies: targets.map(() => r), fatal };
  };
  const ok = targets.map(() => true);
  const sink = { to: opts.sink, failed: false };
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
    if (res.forward) await forward(targets, ok, res.forward, replyMs, sink);
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
  // Without the whole body on disk ticketbooth could not answer for a hop that fails after another took it.
  if (sink.failed) return dropped(reply(451, '4.3.0', 'cannot write the message to the spool; try again later'));
  const end = async (i: number): Promise<Reply> => {
    const { upstream, tx } = targets[i];
    if (!ok[i] || upstream.closed) {
      tx.error = `lost the connection to ${upstream.label} in DATA`;
      upstream.abort();
      return reply(451, '4.4.2', `lost the connection to ${upstream.label} in DATA; try again later`);
    }
    const r = await upstreamReply(tx, upstream, upstream.endData());
    return r.code >= 300 && r.code < 400 ? outOfProtocol(tx, upstream, 'the end of data', r.code) : r;
  };
  if (!opts.commitFirst || targets.length < 2) return { replies: await Promise.all(targets.map((_, i) => end(i))), fatal: false };
  const first = await end(0);
  if (first.code >= 200 && first.code < 300) {
    return { replies: [first, ...(await Promise.all(targets.slice(1).map((_, i) => end(i + 1))))], fatal: false };
  }
  // No dot: each of the others drops the partial message with its connection.
  for (const t of targets.slice(1)) {
    t.upstream.abort();
    t.tx.error = `aborted before the end of data: ${targets[0].upstream.label} refused the message`;
  }
  return { replies: targets.map(() => first), fatal: false };
}

/**
 * Bytes to every target still going and to the sink; waits until each has taken them (or is dropped
 * for not taking them within `replyMs`). A sink that fails is written no more.
 */
async function forward(
  targets: RelayTarget[],
  ok: boolean[],
  bytes: Buffer,
  replyMs: number,
  sink: { to?: BodySink; failed: boolean },
): Promise<void> {
  const waits: Array<Promise<void>> = [];
  if (sink.to && !sink.failed) waits.push(sink.to.write(bytes).catch(() => void (sink.failed = true)));
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
