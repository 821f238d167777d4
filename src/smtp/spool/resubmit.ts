import { SmtpClient } from '../../upstream/smtp-client/client.js';
import { dsnSuffix } from './dsn-words.js';
import { TLS_REQUIRED_KEYWORD } from './tls-required-word.js';

/** Where the spool hands its messages: the listener itself, so routing, TLS policy and audit are the same as for any message. */
export interface Submission {
  host: string;
  port: number;
  heloName: string;
  timeoutMs: number;
}

export interface Envelope {
  from: string;
  to: string;
  smtputf8: boolean;
  body?: '7BIT' | '8BITMIME';
  requireTls?: boolean;
  tlsRequiredNo?: boolean;
  /** RET/ENVID and NOTIFY/ORCPT words as received (RFC 3461): the listener announces DSN where it has a spool. */
  mailDsn?: string[];
  rcptDsn?: string[];
}

/** How it went: the reply that decided it (250 to the end of data, or the refusal), as one line. */
export interface Outcome {
  code: number;
  reply: string;
}

/**
 * One recipient's delivery of a dot-stuffed message (`chunks`, ending in CRLF, without the final
 * dot) through the listener: MAIL, RCPT, DATA, the message, the dot. A connection that fails or
 * a reply that never comes is a 4xx (tried again later), never a verdict.
 */
export async function resubmit(via: Submission, env: Envelope, chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<Outcome> {
  const by = `${via.host}:${via.port}`;
  let client: SmtpClient | undefined;
  try {
    client = await SmtpClient.connect(via.host, via.port, { connectMs: via.timeoutMs, replyMs: via.timeoutMs, label: by });
    await client.greeting();
    await client.hello(via.heloName);
    const params =
      `${env.body ? ` BODY=${env.body}` : ''}${env.smtputf8 ? ' SMTPUTF8' : ''}${env.requireTls ? ' REQUIRETLS' : ''}` +
      (env.tlsRequiredNo ? ` ${TLS_REQUIRED_KEYWORD}=NO` : '');
    for (const [line, want] of [
      [`MAIL FROM:<${env.from}>${params}${dsnSuffix(env.mailDsn)}`, 250],
      [`RCPT TO:<${env.to}>${dsnSuffix(env.rcptDsn)}`, 250],
      ['DATA', 354],
    ] as const) {
      const r = await client.command(line);
      if (r.code !== want) return { code: r.code < 400 ? 451 : r.code, reply: `${r.code} ${r.lines.join(' ')}` };
    }
    for await (const chunk of chunks) if (!client.write(chunk) && !(await client.drained(via.timeoutMs))) throw new Error('send timed out');
    const done = await client.endData();
    await client.quit().catch(() => undefined);
    return { code: done.code, reply: `${done.code} ${done.lines.join(' ')}` };
  } catch (err) {
    return { code: 451, reply: `451 4.4.1 ${(err as Error).message}` };
  } finally {
    client?.abort();
  }
}
