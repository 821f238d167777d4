import { TLS_REQUIRED_KEYWORD } from '../smtp/tls-required-no.js';
import { SmtpClient } from '../upstream/smtp-client/client.js';

export interface Smarthost {
  host: string;
  port: number;
  /** Our EHLO name. */
  heloName: string;
  timeoutMs: number;
}

/**
 * Hands one message to ticketbooth's own SMTP listener (the smarthost), which delivers it by MX
 * as any other: EHLO, MAIL FROM the contact, RCPT the rua address, DATA with the message
 * dot-stuffed. Resolves once the listener answered 250 to the end of data; anything else rejects.
 * The message says `TLS-Required: No`; MAIL says it too (`X-TLS-REQUIRED=NO`), where the listener
 * can still act on it: a report must not be subject to the rua domain's MTA-STS or DANE (RFC 8460 3),
 * whose failures are often what it reports.
 */
export async function submitMessage(via: Smarthost, from: string, to: string, message: Buffer): Promise<void> {
  const client = await SmtpClient.connect(via.host, via.port, {
    connectMs: via.timeoutMs,
    replyMs: via.timeoutMs,
    label: `${via.host}:${via.port}`,
  });
  try {
    await client.greeting();
    await client.hello(via.heloName);
    const tlsRequiredNo = client.extensions.has(TLS_REQUIRED_KEYWORD) ? ` ${TLS_REQUIRED_KEYWORD}=NO` : '';
    for (const [line, want] of [
      [`MAIL FROM:<${from}>${tlsRequiredNo}`, 250],
      [`RCPT TO:<${to}>`, 250],
      ['DATA', 354],
    ] as const) {
      const r = await client.command(line);
      if (r.code !== want) throw new Error(`${client.label} answered ${line.split(':')[0]} with ${r.code} ${r.lines.join(' / ')}`);
    }
    client.write(dotStuffed(message));
    const done = await client.endData();
    if (done.code !== 250) throw new Error(`${client.label} refused the report: ${done.code} ${done.lines.join(' / ')}`);
    await client.quit();
  } finally {
    client.abort();
  }
}

/** RFC 5321 4.5.2: a line that starts with a dot gets another; the message ends in CRLF before the final dot. */
function dotStuffed(message: Buffer): Buffer {
  let text = message.toString('latin1').replace(/(^|\r\n)\./g, '$1..');
  if (!text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(text, 'latin1');
}
