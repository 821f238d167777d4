import { request, type Agent, type RequestOptions } from 'node:https';
import type { LookupFunction } from 'node:net';
import { MAX_POLICY_BYTES, parseStsPolicy, type StsPolicy } from './policy.js';

/** TLS-RPT's words (RFC 8460 4.3.2.1) for why a policy could not be had. */
export type FetchFailure = 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid';

export interface FetchOptions {
  /** PEM trust anchors for the policy host; the system CAs when absent. */
  ca?: string;
  /** An egress proxy's agent (CONNECT), for gateways that reach the web only through one. */
  agent?: Agent;
  /** How the policy host's name is resolved (the configured `dns.servers`). */
  lookup?: LookupFunction;
  timeoutMs: number;
}

/**
 * `GET https://mta-sts.<domain>/.well-known/mta-sts.txt` as RFC 8461 3.3 demands: a certificate
 * valid for that name, no redirect followed, only `200` with `text/plain`, at most 64 KiB.
 */
export function fetchPolicy(domain: string, o: FetchOptions): Promise<{ policy: StsPolicy } | { failure: FetchFailure; why: string }> {
  const host = `mta-sts.${domain}`;
  const options: RequestOptions = {
    host,
    port: 443,
    path: '/.well-known/mta-sts.txt',
    method: 'GET',
    servername: host,
    // One request per connection: nothing lingers in a proxy's tunnel or the policy host's keep-alive.
    headers: { 'user-agent': 'ticketbooth', accept: 'text/plain', connection: 'close' },
    timeout: o.timeoutMs,
    ...(o.ca ? { ca: o.ca } : {}),
    ...(o.agent ? { agent: o.agent } : { agent: false }),
    ...(o.lookup ? { lookup: o.lookup } : {}),
  };
  return new Promise((resolve) => {
    const fail = (failure: FetchFailure, why: string): void => {
      req.destroy();
      resolve({ failure, why });
    };
    const req = request(options, (res) => {
      const type = (res.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (res.statusCode !== 200)
        return fail('sts-policy-fetch-error', `${host} answered HTTP ${res.statusCode} (only 200 counts; redirects are not followed)`);
      if (type !== 'text/plain') return fail('sts-policy-invalid', `${host} sent ${type || 'no content type'}, not text/plain`);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_POLICY_BYTES) fail('sts-policy-invalid', `${host}: policy larger than ${MAX_POLICY_BYTES} bytes`);
        else chunks.push(c);
      });
      res.on('end', () => {
        const parsed = parseStsPolicy(Buffer.concat(chunks).toString('utf8'));
        resolve('error' in parsed ? { failure: 'sts-policy-invalid', why: `${host}: ${parsed.error}` } : { policy: parsed });
      });
      res.on('error', (err) => fail('sts-policy-fetch-error', `${host}: ${err.message}`));
    });
    req.on('timeout', () => fail('sts-policy-fetch-error', `${host}: no answer within ${o.timeoutMs} ms`));
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A certificate that does not verify for the policy host is its own failure in TLS-RPT.
      const webpki = /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_(GET|VERIFY)|HOSTNAME/i.test(err.code ?? '');
      resolve({ failure: webpki ? 'sts-webpki-invalid' : 'sts-policy-fetch-error', why: `${host}: ${err.message}` });
    });
    req.end();
  });
}
