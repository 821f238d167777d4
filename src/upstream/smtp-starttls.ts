import type { Socket } from 'node:net';
import type { UpstreamErrorStage } from '../audit/events.js';
import { ReplyReader, type SmtpReply } from '../smtp/reply-reader.js';

export class StarttlsError extends Error {
  constructor(
    message: string,
    readonly code: 'ERR_NO_STARTTLS' | 'ERR_STARTTLS_REFUSED' | 'ERR_STARTTLS_INJECTION' | 'ERR_SMTP_GREETING' | 'ERR_SMTP_PROTOCOL',
    /** How far the conversation got (for the `upstream.error` line). */
    readonly stage: Exclude<UpstreamErrorStage, 'connect'>,
  ) {
    super(message);
  }
}

/** A reply that never came (timeout, close, garbage) while waiting at `stage`; `cause` is the reader's error. */
export class StarttlsReadError extends Error {
  constructor(
    message: string,
    readonly stage: Exclude<UpstreamErrorStage, 'connect' | 'injection'>,
    options: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface StarttlsResult {
  /** The server's greeting, as received, for a client that should see it. */
  greeting: SmtpReply;
  /** The name the server gave in its EHLO reply (first word of the first line). */
  ehloName: string;
  /** The cleartext EHLO reply's extensions (upper-cased keywords with their parameters). */
  extensions: Map<string, string>;
}

/**
 * Takes an SMTP connection from greeting to the point where TLS may start: greeting, EHLO,
 * STARTTLS. Refuses to go on if the server sent anything after its `220` to STARTTLS: those bytes
 * would otherwise be read later as if TLS protected them (STARTTLS response injection).
 */
export async function negotiateStarttls(socket: Socket, heloName: string, timeoutMs: number): Promise<StarttlsResult> {
  const reader = new ReplyReader(socket);
  const read = async (stage: StarttlsReadError['stage']): Promise<SmtpReply> => {
    try {
      return await reader.read(timeoutMs);
    } catch (err) {
      throw new StarttlsReadError(`waiting for the ${stage === 'starttls' ? 'STARTTLS' : stage === 'ehlo' ? 'EHLO' : 'greeting'} reply: ${(err as Error).message}`, stage, { cause: err });
    }
  };
  try {
    const greeting = await read('greeting');
    if (greeting.code !== 220) throw new StarttlsError(`server greeting: ${summary(greeting)}`, 'ERR_SMTP_GREETING', 'greeting');
    socket.write(`EHLO ${heloName}\r\n`);
    const ehlo = await read('ehlo');
    if (ehlo.code !== 250) throw new StarttlsError(`EHLO refused: ${summary(ehlo)}`, 'ERR_SMTP_PROTOCOL', 'ehlo');
    const extensions = parseExtensions(ehlo);
    if (!extensions.has('STARTTLS')) throw new StarttlsError('server does not offer STARTTLS', 'ERR_NO_STARTTLS', 'starttls');
    socket.write('STARTTLS\r\n');
    const ready = await read('starttls');
    if (ready.code !== 220) throw new StarttlsError(`STARTTLS refused: ${summary(ready)}`, 'ERR_STARTTLS_REFUSED', 'starttls');
    if (reader.pending > 0) {
      throw new StarttlsError(`server sent ${reader.pending} bytes after its 220 to STARTTLS (response injection)`, 'ERR_STARTTLS_INJECTION', 'injection');
    }
    return { greeting, ehloName: (ehlo.lines[0] ?? '').split(/\s+/)[0] ?? '', extensions };
  } finally {
    const rest = reader.detach();
    if (rest.length > 0 && !socket.destroyed) socket.destroy();
  }
}

export function parseExtensions(ehlo: SmtpReply): Map<string, string> {
  const ext = new Map<string, string>();
  for (const line of ehlo.lines.slice(1)) {
    const [word, ...params] = line.trim().split(/\s+/);
    if (word) ext.set(word.toUpperCase(), params.join(' '));
  }
  return ext;
}

export function summary(reply: SmtpReply): string {
  return `${reply.code} ${reply.lines.join(' / ')}`.slice(0, 200);
}
