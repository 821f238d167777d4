import { request } from 'node:https';
import type { LookupFunction } from 'node:net';

export interface HttpsDelivery {
  /** PEM trust anchors for the endpoint; the system CAs when absent. */
  ca?: string;
  /** How the endpoint's name is resolved (the configured `dns.servers`). */
  lookup?: LookupFunction;
  timeoutMs: number;
}

/**
 * RFC 8460 5.2: the gzip-compressed report as the body of a POST to the `https:` rua, media type
 * `application/tlsrpt+gzip`. Delivered when the endpoint answers 2xx (a redirect is not followed:
 * a report is not sent somewhere the domain did not name).
 */
export function postReport(url: URL, gzipped: Buffer, o: HttpsDelivery): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/tlsrpt+gzip', 'content-length': gzipped.length, 'user-agent': 'ticketbooth' },
        timeout: o.timeoutMs,
        agent: false,
        ...(o.ca ? { ca: o.ca } : {}),
        ...(o.lookup ? { lookup: o.lookup } : {}),
      },
      (res) => {
        res.resume(); // the body says nothing we act on
        const code = res.statusCode ?? 0;
        res.on('end', () => (code >= 200 && code < 300 ? resolve() : reject(new Error(`${url.host} answered HTTP ${code}`))));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url.host}: no answer within ${o.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(gzipped);
  });
}
