import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';

/** A decoded answer; dns-packet sets `rcode` ('NOERROR', 'NXDOMAIN', 'SERVFAIL', …) but its types omit it. */
export type DnsResponse = dnsPacket.DecodedPacket & { rcode: string };

/**
 * One UDP query asking the way a DANE client does: RD, AD (RFC 6840: tell me whether it validated)
 * and an OPT record with DO. Fails after `timeoutMs` without an answer carrying the query's id.
 */
export function queryDns(server: string, name: string, type: dnsPacket.RecordType, timeoutMs = 2000): Promise<DnsResponse> {
  const at = server.lastIndexOf(':');
  const [host, port] = [server.slice(0, at), Number(server.slice(at + 1))];
  const id = randomInt(65536);
  const opt = { udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: dnsPacket.DNSSEC_OK, flag_do: true, options: [] };
  const query = dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.AUTHENTIC_DATA | dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    additionals: [{ type: 'OPT', name: '.', ...opt }],
  });
  const sock = createSocket('udp4');
  return new Promise<DnsResponse>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer from ${server} to ${name} ${type} within ${timeoutMs} ms`)), timeoutMs);
    sock.on('message', (msg) => {
      const res = dnsPacket.decode(msg) as DnsResponse;
      if (res.id !== id) return;
      clearTimeout(timer);
      resolve(res);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.send(query, port, host);
  }).finally(() => sock.close());
}

export function soaSerial(res: DnsResponse): number | undefined {
  const soa = res.answers?.find((a) => a.type === 'SOA');
  return soa?.type === 'SOA' ? soa.data.serial : undefined;
}
