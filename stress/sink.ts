import type { CertPair } from '../test/support/certs.js';
import { startFaultServer, type FaultServer, type FaultServerOptions } from '../test/support/smtp-fault-server.js';

/**
 * The campaign's next hop: the test fault server (STARTTLS, PIPELINING, 8BITMIME, SMTPUTF8, SIZE),
 * recording each message it accepted byte for byte (MAIL and RCPT lines, body). It reads line ends
 * leniently, as the servers SMTP smuggling exploits do: if a bare-LF end of data ever got through,
 * the smuggled message would show up here as a phantom.
 */
export function startSink(cert: CertPair, opts: Partial<FaultServerOptions> = {}): Promise<FaultServer> {
  return startFaultServer({ cert, starttls: true, lenientEol: true, name: 'sink.stress.test', ...opts });
}
