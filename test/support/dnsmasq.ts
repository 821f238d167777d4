import { freeUdpPort } from './ports.js';
import { startProcess } from './process.js';

/**
 * A private dnsmasq answering for test domains only (`--local` makes it authoritative: unknown
 * names get NXDOMAIN, nothing is forwarded anywhere). One instance per test file, stopped in `after`.
 */
export interface DnsmasqOptions {
  /** `domain,host,preference`, as dnsmasq's --mx-host. */
  mx?: string[];
  /** `name,address`, as --host-record. */
  hosts?: string[];
  /** `name,type,hexdata`, as --dns-rr (e.g. a null MX: `null.test,15,000000`). */
  rawRecords?: string[];
  /** Domains dnsmasq answers for authoritatively (default `test`). */
  local?: string[];
}

export interface Dnsmasq {
  port: number;
  /** For a resolver's setServers / ticketbooth's `dns.servers`. */
  server: string;
  /** What dnsmasq logged (queries included). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * A free port is only free until someone else binds it: test files run in parallel, and another
 * one's dnsmasq may take the same port first. Then a new port is tried (a few times).
 */
export async function startDnsmasq(opts: DnsmasqOptions): Promise<Dnsmasq> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(await freeUdpPort(), opts);
    } catch (err) {
      if (attempt >= 5 || !/Address already in use/.test((err as Error).message)) throw err;
    }
  }
}

async function startOn(port: number, opts: DnsmasqOptions): Promise<Dnsmasq> {
  const args = [
    '--no-daemon',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--bind-interfaces',
    '--listen-address=127.0.0.1',
    `--port=${port}`,
    '--log-queries',
    '--log-facility=-',
    '--user=root',
    ...(opts.local ?? ['test']).map((d) => `--local=/${d}/`),
    ...(opts.mx ?? []).map((m) => `--mx-host=${m}`),
    ...(opts.hosts ?? []).map((h) => `--host-record=${h}`),
    ...(opts.rawRecords ?? []).map((r) => `--dns-rr=${r}`),
  ];
  const proc = await startProcess('dnsmasq', args, { ready: /started, version/ });
  return { port, server: `127.0.0.1:${port}`, output: proc.output, stop: proc.stop };
}
