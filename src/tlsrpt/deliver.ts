import { getServers } from 'node:dns';
import { hostname } from 'node:os';
import { readConfigFile } from '../config/files.js';
import type { Config } from '../config/schema.js';
import { dnsSchema, type DnsConfig } from '../config/smtp-schema.js';
import { lookupThrough } from '../dns/lookup-through.js';
import { SecureResolver } from '../dns/secure-resolver.js';
import { parseListen } from '../net/listen-address.js';
import { postReport, type HttpsDelivery } from './deliver-https.js';
import { submitMessage, type Smarthost } from './deliver-mail.js';
import { reportMessage } from './mail-message.js';
import type { Rua } from './rua.js';

/** One report ready to go: the gzip-compressed JSON and what its mail says of it. */
export interface ReadyReport {
  domain: string;
  reportId: string;
  filename: string;
  gzipped: Buffer;
  org: string;
  contact: string;
  submitter: string;
}

const TIMEOUT_MS = 30_000;

/**
 * Where reports go and how, from the config (`--config`): its `dns.servers` for the `_smtp._tls`
 * lookups and the `https:` endpoints' names, a CA for those endpoints (`--ca`, else `mtaSts.ca`),
 * and its `type: smtp` listener (the one named, else the first) to hand `mailto:` reports to.
 */
export class Deliveries {
  readonly resolver: SecureResolver;
  private readonly https: HttpsDelivery;
  private readonly smarthost?: Smarthost;

  constructor(config: Config | undefined, opts: { ca?: string; listener?: string }) {
    const dns: DnsConfig = config?.dns ?? dnsSchema.parse({});
    this.resolver = new SecureResolver({ servers: dns.servers ?? getServers(), timeoutMs: dns.timeoutSeconds * 1000, tries: dns.tries });
    const caFile = opts.ca ?? config?.mtaSts.ca;
    this.https = {
      timeoutMs: TIMEOUT_MS,
      ...(caFile ? { ca: readConfigFile(caFile, 'ca', opts.ca ? '--ca' : 'mtaSts') } : {}),
      ...(dns.servers ? { lookup: lookupThrough(dns) } : {}),
    };
    const smtp = config?.listeners.filter((l) => l.type === 'smtp');
    const l = opts.listener ? smtp?.find((x) => x.name === opts.listener) : smtp?.[0];
    if (opts.listener && !l) throw new Error(`--listener: no type: smtp listener named "${opts.listener}" in the config`);
    if (l) {
      const at = parseListen(l.listen);
      // A listener on every address is reached on loopback.
      const host = at.host === '0.0.0.0' ? '127.0.0.1' : at.host === '::' ? '::1' : at.host;
      this.smarthost = { host, port: at.port, heloName: l.hostname ?? hostname(), timeoutMs: TIMEOUT_MS };
    }
  }

  /** Delivers the report to one rua; rejects with the reason when it did not go. */
  async deliver(r: ReadyReport, rua: Rua): Promise<void> {
    if (rua.kind === 'https') return postReport(rua.url, r.gzipped, this.https);
    if (!this.smarthost) throw new Error("a mailto: report goes through ticketbooth's SMTP listener: --config names none (type: smtp)");
    const message = reportMessage({
      from: r.contact,
      to: rua.address,
      domain: r.domain,
      submitter: r.submitter,
      org: r.org,
      reportId: r.reportId,
      filename: r.filename,
      gzipped: r.gzipped,
    });
    return submitMessage(this.smarthost, r.contact, rua.address, message);
  }
}
