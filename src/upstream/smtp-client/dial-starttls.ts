import type { DialContext, UpstreamTls } from '../tls-dialer.js';
import type { TlsTarget } from '../tls-target.js';
import { SmtpClient } from './client.js';

/**
 * A tunnel's upstream with `starttls: smtp`: connect, greeting, EHLO, STARTTLS, then the TLS
 * handshake on that connection. Returns the TLS connection and the server's greeting as received,
 * for a client whose own EHLO then travels inside TLS. Each step gets `timeoutMs`.
 */
export async function dialStarttls(
  target: TlsTarget,
  heloName: string,
  timeoutMs: number,
  dial: DialContext,
): Promise<{ upstream: UpstreamTls; greeting: string }> {
  const client = await SmtpClient.connect(target.host, target.port, { connectMs: timeoutMs, replyMs: timeoutMs, report: dial });
  try {
    const greeting = await client.greeting();
    await client.hello(heloName);
    return { upstream: await client.startTls(target, dial), greeting: greeting.raw };
  } catch (err) {
    client.abort();
    throw err;
  }
}
