import { createServer, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { CertPair } from './certs.js';
import { listenOnLoopback } from './loopback-listen.js';

/**
 * A small SMTP server with STARTTLS (net + `new TLSSocket(socket, { isServer: true })`), enough
 * for a client to get a greeting, EHLO, STARTTLS, EHLO again inside TLS and send a message.
 * Knobs for the failure cases: no STARTTLS offered, bytes injected after the 220 to STARTTLS.
 * It counts what it saw, so tests assert on the server's side of the story.
 */
export interface SmtpServerOptions {
  cert: CertPair;
  /** The name in the greeting and the EHLO reply (tells instances behind one balancer apart). */
  name?: string;
  /** Offer STARTTLS in the cleartext EHLO reply (default true). */
  starttls?: boolean;
  /** Written right after `220 ... ready to start TLS`: a STARTTLS response injection. */
  injectAfterStarttls?: string;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export interface SmtpServerStats {
  connections: number;
  /** TLS handshakes completed, and how many of them resumed a session (server's `isSessionReused()`). */
  tlsSessions: number;
  resumed: number;
  /** Messages accepted with `250` after DATA. */
  messages: number;
  /** Every command line received, tagged by whether it came inside TLS. */
  commands: Array<{ tls: boolean; line: string }>;
}

export interface SmtpTestServer {
  host: string;
  port: number;
  name: string;
  greeting: string;
  stats: SmtpServerStats;
  stop(): Promise<void>;
}

export async function startSmtpServer(opts: SmtpServerOptions): Promise<SmtpTestServer> {
  const name = opts.name ?? 'mx.test';
  const greeting = `220 ${name} ESMTP ticketbooth-test-server\r\n`;
  const stats: SmtpServerStats = { connections: 0, tlsSessions: 0, resumed: 0, messages: 0, commands: [] };
  // One context for every connection: it holds the ticket keys, so resumption works across them.
  const context = createSecureContext({
    cert: opts.cert.cert,
    key: opts.cert.key,
    minVersion: opts.minVersion ?? 'TLSv1.2',
    maxVersion: opts.maxVersion ?? 'TLSv1.3',
  });
  const server = createServer((socket) => {
    stats.connections++;
    socket.on('error', () => socket.destroy());
    new Session(socket, { ...opts, name }, stats, () => {
      const tls = new TLSSocket(socket, { isServer: true, secureContext: context });
      tls.on('error', () => socket.destroy());
      tls.once('secure', () => {
        stats.tlsSessions++;
        if (tls.isSessionReused()) stats.resumed++;
      });
      return tls;
    }).start(greeting);
  });
  const { host, port, stop } = await listenOnLoopback(server);
  return { host, port, name, greeting, stats, stop };
}

class Session {
  private stream: Duplex;
  private tls = false;
  private buffer = '';
  private inData = false;
  private readonly onData = (chunk: Buffer): void => {
    this.buffer += chunk.toString('latin1');
    this.drain();
  };

  constructor(
    socket: Socket,
    private readonly opts: SmtpServerOptions & { name: string },
    private readonly stats: SmtpServerStats,
    private readonly upgrade: () => TLSSocket,
  ) {
    this.stream = socket;
  }

  start(greeting: string): void {
    this.stream.on('data', this.onData);
    this.stream.write(greeting);
  }

  private drain(): void {
    for (;;) {
      if (this.inData) {
        const end = this.buffer.indexOf('\r\n.\r\n');
        if (end < 0) return;
        this.buffer = this.buffer.slice(end + 5);
        this.inData = false;
        this.stats.messages++;
        this.stream.write('250 2.0.0 queued\r\n');
        continue;
      }
      const nl = this.buffer.indexOf('\n');
      if (nl < 0) return;
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      if (this.command(line) === 'stop') return;
    }
  }

  private command(line: string): 'stop' | undefined {
    this.stats.commands.push({ tls: this.tls, line });
    const verb = line.split(' ')[0].toUpperCase();
    const offerTls = !this.tls && (this.opts.starttls ?? true);
    switch (verb) {
      case 'EHLO':
        this.stream.write(
          `250-${this.opts.name} greets you\r\n250-PIPELINING\r\n250-8BITMIME\r\n${offerTls ? '250-STARTTLS\r\n' : ''}250 SIZE 10240000\r\n`,
        );
        return;
      case 'HELO':
        this.stream.write(`250 ${this.opts.name}\r\n`);
        return;
      case 'STARTTLS': {
        if (!offerTls) {
          this.stream.write('502 5.5.1 STARTTLS not available\r\n');
          return;
        }
        this.stream.off('data', this.onData);
        this.stream.write(`220 2.0.0 ready to start TLS\r\n${this.opts.injectAfterStarttls ?? ''}`);
        this.buffer = ''; // anything the client pipelined after STARTTLS is discarded (RFC 3207 5)
        this.tls = true;
        this.stream = this.upgrade();
        this.stream.on('data', this.onData);
        return 'stop';
      }
      case 'MAIL':
      case 'RCPT':
      case 'RSET':
      case 'NOOP':
        this.stream.write('250 2.0.0 ok\r\n');
        return;
      case 'DATA':
        this.inData = true;
        this.stream.write('354 end with <CRLF>.<CRLF>\r\n');
        return;
      case 'QUIT':
        this.stream.end('221 2.0.0 bye\r\n');
        return 'stop';
      default:
        this.stream.write('500 5.5.2 unknown command\r\n');
        return;
    }
  }
}
