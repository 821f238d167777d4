import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';

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

export async function startDnsmasq(opts: DnsmasqOptions): Promise<Dnsmasq> {
  const port = await freeUdpPort();
  const args = [
    '--no-daemon', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces',
    '--listen-address=127.0.0.1', `--port=${port}`, '--log-queries', '--log-facility=-', '--user=root',
    ...(opts.local ?? ['test']).map((d) => `--local=/${d}/`),
    ...(opts.mx ?? []).map((m) => `--mx-host=${m}`),
    ...(opts.hosts ?? []).map((h) => `--host-record=${h}`),
    ...(opts.rawRecords ?? []).map((r) => `--dns-rr=${r}`),
  ];
  const child: ChildProcess = spawn('dnsmasq', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dnsmasq not ready in 10 s:\n${out}`)), 10_000);
    const onData = (c: Buffer): void => {
      out += c.toString();
      if (/started, version/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dnsmasq exited (${code}):\n${out}`));
    });
  });
  return {
    port,
    server: `127.0.0.1:${port}`,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
