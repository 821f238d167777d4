import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP relay in front of a TLS server that reads each connection's ClientHello as the server
 * receives it and records the first PSK identity (RFC 8446 4.2.11: the ticket offered), hashed:
 * the destination's own record of which tickets it was offered, and how often. Bytes pass through
 * unchanged.
 */
export interface PskWitness {
  port: number;
  /** SHA-256 (hex, 16 chars) of each offered ticket, one per ClientHello that carried one, in order. */
  offered: string[];
  /** Tickets the destination was offered more than once, counted once per extra offer. */
  offeredTwice(): number;
  stop(): Promise<void>;
}

export async function startPskWitness(upstreamPort: number): Promise<PskWitness> {
  const offered: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => (s === client ? upstream : client).destroy());
    }
    let head = Buffer.alloc(0);
    let done = false;
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      if (done) return;
      head = Buffer.concat([head, chunk]);
      const identity = clientHelloPsk(head);
      if (identity === 'incomplete') return;
      done = true;
      if (identity) offered.push(createHash('sha256').update(identity).digest('hex').slice(0, 16));
    });
    client.on('end', () => upstream.end());
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    offered,
    offeredTwice: () => offered.length - new Set(offered).size,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The first PSK identity of a ClientHello in one TLS record; undefined without one; 'incomplete' until the record is whole. */
export function clientHelloPsk(buf: Buffer): Buffer | undefined | 'incomplete' {
  if (buf.length < 5) return 'incomplete';
  if (buf[0] !== 22) return undefined; // not a handshake record
  const end = 5 + buf.readUInt16BE(3);
  if (buf.length < end) return 'incomplete';
  let p = 5 + 4 + 2 + 32; // handshake header, legacy_version, random
  p += 1 + buf[p]; // legacy_session_id
  p += 2 + buf.readUInt16BE(p); // cipher_suites
  p += 1 + buf[p]; // legacy_compression_methods
  const extEnd = p + 2 + buf.readUInt16BE(p);
  for (p += 2; p + 4 <= extEnd;) {
    const type = buf.readUInt16BE(p);
    const len = buf.readUInt16BE(p + 2);
    // pre_shared_key: identities<7..2^16-1>, each identity<1..2^16-1> then obfuscated_ticket_age (4)
    if (type === 41) return buf.subarray(p + 8, p + 8 + buf.readUInt16BE(p + 6));
    p += 4 + len;
  }
  return undefined;
}
