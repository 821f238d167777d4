import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { CertPair } from './certs.js';
import { GARBAGE_REPLY, stageAction, type Stage, type StageFault } from './smtp-stage-fault.js';

/**
 * A next hop whose misbehaviour a test chooses: a small SMTP server (net + TLSSocket for
 * STARTTLS) that records what it stored, so a test can say "delivered exactly once".
 * A message counts as stored only when the server answered 250 to its final dot.
 */
export type Fault =
  | 'none'
  | 'drop-after-mail'
  | 'drop-after-rcpt'
  | 'drop-in-data'
  | 'drop-after-dot'
  | 'stall-greeting'
  | 'stall-after-dot'
  | 'reject-rcpt'
  /** Answers every RCPT with 450 (a temporary refusal of that recipient). */
  | 'tempfail-rcpt'
  | 'tempfail-data'
  /** Answers the final dot with 451 (a temporary refusal of the message); stores nothing. */
  | 'tempfail-dot'
  /** Answers DATA with 250 instead of 354 (out of protocol). */
  | 'data-250'
  /** Answers the final dot with 354 (out of protocol); stores nothing. */
  | 'dot-354'
  /** Refuses the message at the final dot (554); stores nothing. */
  | 'reject-dot'
  /** Refuses MAIL and sends a second, unasked reply behind the refusal (out of step). */
  | 'mail-refused-twice'
  /** Stores the message, then drops the connection before its 250: the sender retries, a duplicate (RFC 1047). */
  | 'drop-after-storing'
  | StageFault;

export interface FaultServerOptions {
  host?: string;
  /** Default: an ephemeral port. */
  port?: number;
  cert?: CertPair;
  name?: string;
  /** Offer STARTTLS (needs cert). */
  starttls?: boolean;
  /** Extensions to offer after EHLO (besides STARTTLS, AUTH). Default PIPELINING, 8BITMIME, SMTPUTF8, SIZE. */
  extensions?: string[];
  /** Require AUTH PLAIN or LOGIN with these credentials (offered inside TLS only). */
  auth?: { username: string; password: string };
  fault?: Fault;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /**
   * Lines end at any LF, CRLF or not, as lenient servers read them: `\n.\n` then ends the data,
   * so a smuggled second message would be stored as one (the stress campaign's sink wants to see that).
   */
  lenientEol?: boolean;
  /** Holds each 250 to a final dot this long: a connection is at least this old when its transaction ends. */
  dotReplyDelayMs?: number;
  /** What is stored for each accepted message (default: the message): a deliberately faulty sink. */
  tamper?: (m: StoredMessage, index: number) => StoredMessage[];
}

export interface StoredMessage {
  from: string;
  to: string[];
  /** The message as stored, byte for byte: dot-stuffing removed, line ends as received. */
  body: Buffer;
  /** The MAIL and RCPT command lines as received, bytes, without their line end. */
  mailLine: Buffer;
  rcptLines: Buffer[];
  tls: boolean;
}

export interface FaultServer {
  host: string;
  port: number;
  fault: Fault;
  stored: StoredMessage[];
  /** Every command line, with whether it came inside TLS. */
  commands: Array<{ tls: boolean; line: string }>;
  connections: number;
  /** Message bytes received so far (all connections), to see a message stream before its end. */
  dataBytes: number;
  tlsSessions: number;
  resumed: number;
  /** The SNI name each TLS session was asked under ('' when none), in order. */
  servernames: string[];
  /** Resolves when the server has seen this many connections close. */
  closedConnections(n: number): Promise<void>;
  /** Resets every open connection (a restart, or a server timing out its idle clients); how many there were. */
  dropConnections(): number;
  stop(): Promise<void>;
}

export async function startFaultServer(opts: FaultServerOptions = {}): Promise<FaultServer> {
  const host = opts.host ?? '127.0.0.1';
  const name = opts.name ?? 'next.hop.test';
  const context = opts.cert ? createSecureContext({ cert: opts.cert.cert, key: opts.cert.key, minVersion: opts.minVersion }) : undefined;
  const sockets = new Set<Socket>();
  let closed = 0;
  /** Messages answered 250 (or about to be), whatever `tamper` made of them. */
  let accepted = 0;
  const closeWaiters: Array<{ n: number; resolve: () => void }> = [];
  const state: FaultServer = {
    host,
    port: 0,
    fault: opts.fault ?? 'none',
    stored: [],
    commands: [],
    connections: 0,
    dataBytes: 0,
    tlsSessions: 0,
    resumed: 0,
    servernames: [],
    closedConnections: (n) => new Promise((resolve) => (closed >= n ? resolve() : closeWaiters.push({ n, resolve }))),
    dropConnections: () => {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      return n;
    },
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const server: Server = createServer((raw) => {
    sockets.add(raw);
    state.connections++;
    raw.setNoDelay(true);
    raw.on('error', () => undefined);
    raw.once('close', () => {
      sockets.delete(raw);
      closed++;
      for (const w of closeWaiters.filter((x) => closed >= x.n)) w.resolve();
    });
    void converse(raw);
  });

  async function converse(raw: Socket): Promise<void> {
    let stream: Duplex = raw;
    let tls = false;
    let authed = false;
    let buffer = Buffer.alloc(0);
    let wake: (() => void) | undefined;
    let ended = false;
    const onData = (c: Buffer): void => {
      buffer = Buffer.concat([buffer, c]);
      wake?.();
    };
    const onEnd = (): void => {
      ended = true;
      wake?.();
    };
    const attach = (s: Duplex): void => {
      s.on('data', onData);
      s.on('end', onEnd);
      s.on('close', onEnd);
      s.on('error', onEnd);
    };
    attach(raw);
    /** The next line, with its line end. */
    const rawLine = async (): Promise<Buffer | undefined> => {
      for (;;) {
        const nl = opts.lenientEol ? buffer.indexOf(0x0a) : buffer.indexOf('\r\n');
        if (nl >= 0) {
          const end = nl + (opts.lenientEol ? 1 : 2);
          const l = buffer.subarray(0, end);
          buffer = buffer.subarray(end);
          return l;
        }
        if (ended) return undefined;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    };
    const line = async (): Promise<string | undefined> => {
      const l = await rawLine();
      return l && withoutEol(l).toString('utf8');
    };
    const say = (s: string): void => {
      if (!stream.destroyed) stream.write(s + '\r\n');
    };
    const drop = (): void => {
      stream.destroy();
      raw.destroy();
    };

    /** A stage fault instead of the normal answer: 'end' stops the dialogue, 'skip' the command. */
    const faulted = (stage: Stage): 'end' | 'skip' | undefined => {
      const action = stageAction(state.fault, stage);
      if (action === 'drop') drop();
      else if (action === 'closing') stream.end('421 4.3.2 shutting down\r\n');
      else if (action === 'garbage') say(GARBAGE_REPLY);
      return action === undefined ? undefined : action === 'garbage' ? 'skip' : 'end';
    };

    if (state.fault === 'stall-greeting') return; // says nothing; the client must time out
    if (faulted('greeting')) return;
    say(`220 ${name} ESMTP fault-server`);
    let from = '';
    let to: string[] = [];
    let mailLine: Buffer = Buffer.alloc(0);
    let rcptLines: Buffer[] = [];
    for (;;) {
      const input = await rawLine();
      if (input === undefined) return;
      const l = withoutEol(input).toString('utf8');
      state.commands.push({ tls, line: l });
      const verb = l.split(' ')[0].toUpperCase();
      const stage = COMMAND_STAGE.get(verb);
      const f = stage && faulted(stage === 'ehlo' && tls ? 'tls-ehlo' : stage);
      if (f === 'end') return;
      if (f === 'skip') continue;
      if (verb === 'EHLO') {
        const ext = [...(opts.extensions ?? ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'SIZE 10240000'])];
        if (opts.starttls && context && !tls) ext.push('STARTTLS');
        if (opts.auth && tls) ext.push('AUTH PLAIN LOGIN');
        const lines = [name, ...ext];
        lines.forEach((x, i) => say(`250${i === lines.length - 1 ? ' ' : '-'}${x}`));
      } else if (verb === 'HELO') {
        say(`250 ${name}`);
      } else if (verb === 'STARTTLS' && context && !tls) {
        say('220 2.0.0 Ready to start TLS');
        if (faulted('tls')) return; // its garbage is a line of text where a ServerHello belongs
        raw.off('data', onData);
        raw.off('end', onEnd);
        raw.off('close', onEnd);
        raw.off('error', onEnd);
        const secure = new TLSSocket(raw, { isServer: true, secureContext: context });
        secure.on('error', () => undefined);
        await new Promise<void>((resolve) => {
          secure.once('secure', () => resolve());
          secure.once('close', () => resolve());
        });
        if (secure.destroyed) return;
        state.tlsSessions++;
        if (secure.isSessionReused()) state.resumed++;
        state.servernames.push(secure.servername || '');
        stream = secure;
        tls = true;
        buffer = Buffer.alloc(0);
        attach(secure);
      } else if (verb === 'AUTH' && opts.auth) {
        const [, mech, initial] = l.split(' ');
        let user: string;
        let pass: string;
        if (mech?.toUpperCase() === 'PLAIN') {
          const parts = Buffer.from(initial ?? '', 'base64')
            .toString('utf8')
            .split('\0');
          user = parts[1] ?? '';
          pass = parts[2] ?? '';
        } else {
          say('334 VXNlcm5hbWU6');
          user = Buffer.from((await line()) ?? '', 'base64').toString('utf8');
          say('334 UGFzc3dvcmQ6');
          pass = Buffer.from((await line()) ?? '', 'base64').toString('utf8');
        }
        authed = user === opts.auth.username && pass === opts.auth.password;
        say(authed ? '235 2.7.0 Authentication successful' : '535 5.7.8 Authentication credentials invalid');
      } else if (verb === 'MAIL') {
        if (opts.auth && !authed) {
          say('530 5.7.0 Authentication required');
          continue;
        }
        if (state.fault === 'drop-after-mail') return drop();
        if (state.fault === 'mail-refused-twice') {
          say('550 5.7.1 Sender refused\r\n250 2.1.0 Ok');
          continue;
        }
        from = l.slice(10);
        to = [];
        mailLine = withoutEol(input);
        rcptLines = [];
        say('250 2.1.0 Ok');
      } else if (verb === 'RCPT') {
        if (state.fault === 'drop-after-rcpt') return drop();
        if (state.fault === 'reject-rcpt' && l.includes('reject')) {
          say('550 5.1.1 User unknown');
          continue;
        }
        if (state.fault === 'tempfail-rcpt') {
          say('450 4.2.1 mailbox busy, try again later');
          continue;
        }
        to.push(l.slice(8));
        rcptLines.push(withoutEol(input));
        say('250 2.1.5 Ok');
      } else if (verb === 'DATA') {
        if (state.fault === 'tempfail-data') {
          say('451 4.3.0 Try again');
          continue;
        }
        if (state.fault === 'data-250') {
          say('250 2.0.0 Ok');
          continue;
        }
        say('354 End data with <CR><LF>.<CR><LF>');
        const lines: Buffer[] = [];
        let seen = 0;
        for (;;) {
          const d = await rawLine();
          if (d === undefined) return; // dropped mid-message: nothing stored
          const text = withoutEol(d);
          if (text.length === 1 && text[0] === DOT) break;
          lines.push(text[0] === DOT ? d.subarray(1) : d);
          seen += text.length;
          state.dataBytes += d.length;
          if (state.fault === 'drop-in-data' && seen > 200) return drop();
        }
        if (state.fault === 'drop-after-dot') return drop();
        const atDot = faulted('dot');
        if (atDot === 'end') return;
        if (atDot === 'skip') continue;
        if (state.fault === 'stall-after-dot') continue; // never answers the dot
        if (state.fault === 'dot-354' || state.fault === 'reject-dot' || state.fault === 'tempfail-dot') {
          const refusals = {
            'dot-354': '354 go on',
            'reject-dot': '554 5.7.1 message refused at end of data',
            'tempfail-dot': '451 4.3.0 try again later',
          };
          say(refusals[state.fault]);
          continue;
        }
        const m: StoredMessage = { from, to, body: Buffer.concat(lines), mailLine, rcptLines, tls };
        state.stored.push(...(opts.tamper ? opts.tamper(m, accepted) : [m]));
        accepted++;
        if (state.fault === 'drop-after-storing') return drop();
        if (opts.dotReplyDelayMs) await new Promise((resolve) => setTimeout(resolve, opts.dotReplyDelayMs));
        say(`250 2.0.0 Ok: queued as Q${accepted}`);
      } else if (verb === 'RSET') {
        from = '';
        to = [];
        rcptLines = [];
        say('250 2.0.0 Ok');
      } else if (verb === 'NOOP') {
        say('250 2.0.0 Ok');
      } else if (verb === 'QUIT') {
        say('221 2.0.0 Bye');
        stream.end();
        return;
      } else {
        say('502 5.5.2 Error: command not recognized');
      }
    }
  }

  await new Promise<void>((resolve) => server.listen({ host, port: opts.port ?? 0 }, () => resolve()));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

const DOT = 0x2e;

/** Which stage a command is (EHLO inside TLS is `tls-ehlo`, decided where it is used). */
const COMMAND_STAGE = new Map<string, Stage>([
  ['EHLO', 'ehlo'],
  ['STARTTLS', 'starttls'],
  ['MAIL', 'mail'],
  ['RCPT', 'rcpt'],
  ['DATA', 'data'],
  ['RSET', 'rset'],
]);

function withoutEol(line: Buffer): Buffer {
  let end = line.length;
  if (end > 0 && line[end - 1] === 0x0a) end--;
  if (end > 0 && line[end - 1] === 0x0d) end--;
  return line.subarray(0, end);
}
