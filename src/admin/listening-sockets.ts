import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import ipaddr from 'ipaddr.js';

/** A TCP socket in the LISTEN state of this network namespace. */
export interface ListeningSocket {
  address: string;
  port: number;
}

/**
 * The listening TCP sockets of this process's network namespace, from /proc/net/tcp and tcp6
 * (Linux); undefined where neither can be read. Reading them opens no connection, so a check built
 * on them has no side effect on the service (no SMTP session, no upstream dialled by a tunnel).
 */
export function listeningSockets(procNet = '/proc/net'): ListeningSocket[] | undefined {
  const found: ListeningSocket[] = [];
  let read = 0;
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`${procNet}/${file}`, 'ascii');
    } catch {
      continue;
    }
    read++;
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st ...: the address in hex as the kernel stores it, then the port.
      const m = /^\s*\d+:\s+([0-9A-Fa-f]+):([0-9A-Fa-f]{4})\s+\S+\s+([0-9A-Fa-f]{2})\s/.exec(line);
      if (m?.[1] && m[2] && m[3]?.toUpperCase() === '0A') found.push({ address: decodeAddress(m[1]), port: parseInt(m[2], 16) });
    }
  }
  return read > 0 ? found : undefined;
}

/** /proc/net's hex address: 32-bit words in host byte order. */
function decodeAddress(hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  if (endianness() === 'LE') for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  const addr = ipaddr.fromByteArray([...bytes]);
  return addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()
    ? (addr as ipaddr.IPv6).toIPv4Address().toString()
    : addr.toString();
}

/**
 * Whether a listener configured as `host:port` has a socket among `sockets`: one on its port bound
 * to that address or to a wildcard; a host name (not an address) is matched by its port alone.
 */
export function isBound(host: string, port: number, sockets: readonly ListeningSocket[]): boolean {
  const wanted = ipaddr.isValid(host) ? ipaddr.process(host).toString() : undefined;
  return sockets.some(
    (s) => s.port === port && (wanted === undefined || s.address === wanted || s.address === '0.0.0.0' || s.address === '::'),
  );
}
