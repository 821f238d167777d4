import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dnsPacket, { type Answer, type OptAnswer, type Packet, type RecordType } from 'dns-packet';

/**
 * A stub resolver that reports DNSSEC status, for DANE (RFC 7672): Node's `dns` module says neither
 * whether an answer was validated nor (before 22.15) what a TLSA record holds. Queries go to the
 * configured servers with RD, AD and EDNS DO set; the answer counts as `secure` only when the
 * server set AD, so those servers must be validating resolvers reached over a path nobody can
 * tamper with (loopback), as Postfix requires of its resolver for `smtp_dns_support_level = dnssec`.
 */

export type DnsStatus = 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' | 'FORMERR' | 'NOTIMP' | 'TIMEOUT' | 'OTHER';

/** An answer record (not the EDNS pseudo-record). */
export type DnsRecord = Exclude<Answer, OptAnswer>;

export interface DnsResult {
  status: DnsStatus;
  /** The server set AD: every record in the answer, or the proof of non-existence, was validated. */
  secure: boolean;
  /** Records of the asked type, at the name or at the end of its CNAME chain. */
  records: DnsRecord[];
  /** Where the records are: the asked name, or the end of its CNAME chain (lower case, no trailing dot). */
  name: string;
  /** Lowest TTL of those records (or of the negative answer's SOA), seconds. */
  ttl: number;
}

export interface SecureResolverOptions {
  /** `IP` or `IP:PORT` (`[v6]:PORT`). */
  servers: string[];
  timeoutMs: number;
  tries: number;
}

const UDP_PAYLOAD = 1232; // the DNS flag day 2020 size: no IP fragmentation

export class SecureResolver {
  private readonly servers: Array<{ host: string; port: number }>;

  constructor(private readonly opts: SecureResolverOptions) {
    this.servers = opts.servers.map(parseServer);
  }

  /** One question; each server in turn, `tries` rounds; a truncated UDP answer is asked again over TCP. */
  async query(name: string, type: RecordType): Promise<DnsResult> {
    let last: DnsResult = { status: 'TIMEOUT', secure: false, records: [], name: bare(name), ttl: 0 };
    for (let round = 0; round < this.opts.tries; round++) {
      for (const server of this.servers) {
        const id = randomInt(0, 0x10000);
        const question = encodeQuery(id, name, type);
        let answer = await udpExchange(server, question, this.opts.timeoutMs).catch(() => undefined);
        if (answer && ((answer.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) !== 0) {
          answer = await tcpExchange(server, question, this.opts.timeoutMs).catch(() => undefined);
        }
        if (!answer || answer.id !== id || !sameQuestion(answer, name, type)) continue;
        last = resultOf(answer, name, type);
        // SERVFAIL is also what a validating resolver says of a bogus answer: asking another does
        // not make it less bogus, but one resolver's outage should not fail the lookup.
        if (last.status === 'NOERROR' || last.status === 'NXDOMAIN') return last;
      }
    }
    return last;
  }
}

function parseServer(s: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(s);
  if (bracketed) return { host: bracketed[1], port: Number(bracketed[2]) };
  const v4 = /^([0-9.]+):(\d+)$/.exec(s);
  if (v4) return { host: v4[1], port: Number(v4[2]) };
  return { host: s, port: 53 };
}

function encodeQuery(id: number, name: string, type: RecordType): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHENTIC_DATA,
    questions: [{ type, name, class: 'IN' }],
    additionals: [
      {
        type: 'OPT',
        name: '.',
        udpPayloadSize: UDP_PAYLOAD,
        flags: dnsPacket.DNSSEC_OK,
        extendedRcode: 0,
        ednsVersion: 0,
        flag_do: true,
        options: [],
      },
    ],
  });
}

function sameQuestion(p: Packet, name: string, type: RecordType): boolean {
  const q = p.questions?.[0];
  return q !== undefined && q.type === type && q.name.toLowerCase() === name.toLowerCase().replace(/\.$/, '');
}

/** The records of `type` for `name`, following the CNAME chain inside the answer section. */
function resultOf(p: Packet, name: string, type: RecordType): DnsResult {
  const status = rcodeOf(p);
  const secure = ((p.flags ?? 0) & dnsPacket.AUTHENTIC_DATA) !== 0;
  const answers = (p.answers ?? []).filter((a): a is DnsRecord => a.type !== 'OPT');
  let owner = bare(name);
  for (let hops = 0; hops < 8; hops++) {
    const alias = answers.find((a) => a.type === 'CNAME' && a.name.toLowerCase() === owner);
    if (alias?.type !== 'CNAME' || type === 'CNAME') break;
    owner = bare(alias.data);
  }
  const records = answers.filter((a) => a.type === type && a.name.toLowerCase() === owner);
  const soa = (p.authorities ?? []).find((a): a is DnsRecord => a.type === 'SOA');
  const ttls = records.length > 0 ? records.map((r) => r.ttl ?? 0) : soa ? [soa.ttl ?? 0] : [0];
  return { status, secure, records, name: owner, ttl: Math.min(...ttls) };
}

function bare(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function rcodeOf(p: Packet): DnsStatus {
  const code = (p as Packet & { rcode?: string }).rcode;
  const known: DnsStatus[] = ['NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED', 'FORMERR', 'NOTIMP'];
  return known.find((k) => k === code) ?? 'OTHER';
}

/**
 * One exchange with a server: `start` opens the socket and answers through `done`, which settles
 * once (a timeout, an error, an answer) and closes what `start` returned.
 */
function exchange(timeoutMs: number, start: (done: (err?: Error, p?: Packet) => void) => { close(): void }): Promise<Packet> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const opened: { socket?: { close(): void } } = {};
    const done = (err?: Error, p?: Packet): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opened.socket?.close();
      if (err) reject(err);
      else resolve(p!);
    };
    const timer = setTimeout(() => done(new Error('DNS timeout')), timeoutMs);
    opened.socket = start(done);
    if (settled) opened.socket.close(); // settled while starting
  });
}

function decodeInto(done: (err?: Error, p?: Packet) => void, msg: Buffer): void {
  try {
    done(undefined, dnsPacket.decode(msg));
  } catch (err) {
    done(err as Error);
  }
}

function udpExchange(server: { host: string; port: number }, query: Buffer, timeoutMs: number): Promise<Packet> {
  return exchange(timeoutMs, (done) => {
    const socket = createSocket(server.host.includes(':') ? 'udp6' : 'udp4');
    socket.on('error', (err) => done(err));
    // Only the server asked may answer: a spoofed packet from elsewhere is ignored, not taken.
    socket.on('message', (msg, from) => {
      if (from.port === server.port) decodeInto(done, msg);
    });
    socket.connect(server.port, server.host, () => socket.send(query));
    return socket;
  });
}

function tcpExchange(server: { host: string; port: number }, query: Buffer, timeoutMs: number): Promise<Packet> {
  return exchange(timeoutMs, (done) => {
    const socket = connect(server.port, server.host);
    let buffered = Buffer.alloc(0);
    socket.on('error', (err) => done(err));
    const length = Buffer.alloc(2);
    length.writeUInt16BE(query.length);
    socket.on('connect', () => socket.write(Buffer.concat([length, query])));
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return;
      decodeInto(done, buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
    });
    socket.on('close', () => done(new Error('DNS server closed the connection')));
    return { close: () => socket.destroy() };
  });
}

/** The TXT records of an answer, each one's strings joined (RFC 8461 3.1, RFC 8460 3 read them so). */
export function txtStrings(r: DnsResult): string[] {
  return r.records.flatMap((a) => (a.type === 'TXT' ? [[a.data].flat().map(String).join('')] : []));
}
