/**
 * The forwarders under test, each its own process with a PID to charge CPU to: ticketbooth (the
 * built CLI, audit on to a file as in production) and stunnel (client mode, notice log level).
 * The bare Node TLS client is a process too (bare-client-main.ts), making the forwarders' upstream
 * handshakes itself. The direct Node TLS client has no process: the benchmark process does the TLS.
 */
import { fork } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CertPair } from '../../test/support/certs.js';
import { startProcess } from '../../test/support/process.js';
import { startStunnelClient, type StunnelOptions } from '../../test/support/stunnel.js';
import { smarthostConfig } from '../postfix-destination.js';
import { CLI, NODE_FLAGS } from './build.js';
import type { LoadResult } from './load.js';

export type ContenderName = 'ticketbooth' | 'stunnel' | 'direct' | 'bare';

export interface Forwarder {
  name: ContenderName;
  host: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export interface Stunnel extends Forwarder {
  /** The OpenSSL it runs with, from its start-up lines (e.g. `OpenSSL 3.0.22`). */
  openssl: string;
}

export interface Ticketbooth extends Forwarder {
  /** `tls.handshake` audit lines so far: how many, and how many resumed. */
  handshakes(): { total: number; resumed: number };
}

export interface Upstream {
  host: string;
  port: number;
  servername: string;
  cert: CertPair;
}

/** A bench server on loopback, its certificate made for `localhost`, as the contenders dial it. */
export function upstreamOf(server: { host: string; port: number }, cert: CertPair): Upstream {
  return { host: server.host, port: server.port, servername: 'localhost', cert };
}

let seq = 0;

async function startTicketbooth(args: string[], ready: RegExp, audit: string, nodeFlags: string[] = []): Promise<Ticketbooth> {
  const proc = await startProcess(process.execPath, [...NODE_FLAGS, ...nodeFlags, CLI, ...args], { ready, timeoutMs: 20_000 });
  return {
    name: 'ticketbooth',
    host: '127.0.0.1',
    port: Number(proc.ready[1]),
    pid: proc.child.pid ?? NaN,
    handshakes: () => {
      const lines = (existsSync(audit) ? readFileSync(audit, 'utf8') : '').split('\n').filter((l) => l.includes('"tls.handshake"'));
      return { total: lines.length, resumed: lines.filter((l) => l.includes('"resumed":true')).length };
    },
    stop: () => proc.stop(),
  };
}

/** `ticketbooth tunnel` to `up` (optionally `--starttls smtp`), verifying it against its own CA. */
export function startTicketboothTunnel(dir: string, up: Upstream, starttls?: 'smtp'): Promise<Ticketbooth> {
  const audit = join(dir, `audit-tunnel-${++seq}.jsonl`);
  const args = ['tunnel', '--listen', '127.0.0.1:0', '--connect', `${up.host}:${up.port}`, '--servername', up.servername];
  args.push('--ca', up.cert.certFile, '--audit-log', audit, ...(starttls ? ['--starttls', starttls] : []));
  return startTicketbooth(args, /listening on 127\.0\.0\.1:(\d+)/, audit);
}

/** What `ticketbooth serve` runs the tunnel with beyond the one-line tunnel's flags. */
export interface ServeOptions {
  /** `upstream.groups` (the one-line tunnel has no flag for it); Node's default when absent. */
  groups?: string;
  /** The top-level `workers` key; the config's default (1) when absent. */
  workers?: number | 'auto';
  /** Node flags besides the product's. */
  nodeFlags?: string[];
}

/** The same tunnel through `ticketbooth serve`, as `opts` say. */
export function startTicketboothTunnelServe(dir: string, up: Upstream, opts: ServeOptions = {}): Promise<Ticketbooth> {
  const n = ++seq;
  const audit = join(dir, `audit-tunnel-serve-${n}.jsonl`);
  const config = join(dir, `tunnel-serve-${n}.yaml`);
  const { groups, workers, nodeFlags = [] } = opts;
  const upstream = `{ host: "${up.host}", port: ${up.port}, servername: "${up.servername}", ca: "${up.cert.certFile}"${groups ? `, groups: "${groups}"` : ''} }`;
  writeFileSync(
    config,
    `${workers !== undefined ? `workers: ${workers}\n` : ''}listeners:\n  - { name: tunnel, type: tunnel, listen: "127.0.0.1:0", upstream: ${upstream} }\naudit: { file: "${audit}" }\n`,
  );
  return startTicketbooth(['serve', '--config', config], /tunnel listening on 127\.0\.0\.1:(\d+)/, audit, nodeFlags);
}

export interface BareClient {
  name: 'bare';
  pid: number;
  /** `count` connections, `inFlight` at a time, made by the bare client's own process. */
  load(count: number, inFlight: number): Promise<LoadResult>;
  stop(): Promise<void>;
}

type BareMessage = { ready?: true; result?: LoadResult; error?: string };

const bareMain = fileURLToPath(new URL('./bare-client-main.ts', import.meta.url));

/** The bare Node TLS client on ticketbooth's runtime and flags, offering `groups` (Node's default when absent). */
export function startBareClient(up: Upstream, groups?: string): Promise<BareClient> {
  const child = fork(bareMain, [up.host, String(up.port), up.servername, up.cert.certFile, groups ?? ''], {
    execArgv: [...NODE_FLAGS, '--import', 'tsx'],
  });
  // One answer awaited at a time; an exit fails it (and the start, if it comes first).
  let waiting: { resolve(m: BareMessage): void; reject(e: Error): void } | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.on('message', (m: BareMessage) => waiting?.resolve(m));
  child.on('exit', (code) => waiting?.reject(new Error(`bare client exited (${code})`)));
  const next = (): Promise<BareMessage> => new Promise((resolve, reject) => (waiting = { resolve, reject }));
  const bare: BareClient = {
    name: 'bare',
    pid: child.pid ?? NaN,
    load: async (count, inFlight) => {
      const answer = next();
      child.send({ count, inFlight });
      const m = await answer;
      if (!m.result) throw new Error(`bare client: ${m.error ?? 'no result'}`);
      return m.result;
    },
    stop: async () => {
      child.disconnect();
      await exited;
    },
  };
  return next().then(() => bare);
}

/**
 * `ticketbooth serve` with one `type: smtp` listener relaying to `up` (TLS level verify with the
 * destination's CA: stunnel checks chain and name too).
 */
export function startTicketboothSmarthost(dir: string, up: Upstream, opts: { connectionCache?: boolean } = {}): Promise<Ticketbooth> {
  const n = ++seq;
  const audit = join(dir, `audit-smarthost-${n}.jsonl`);
  const config = join(dir, `smarthost-${n}.yaml`);
  const tls = `{ level: verify, ca: "${up.cert.certFile}" }`;
  writeFileSync(config, smarthostConfig({ host: up.host, port: up.port, tls, audit, ...opts }));
  return startTicketbooth(['serve', '--config', config], /smarthost listening on 127\.0\.0\.1:(\d+)/, audit);
}

/** `ticketbooth serve` with one `type: http` listener whose origin `host` is `up` (verified against its CA). */
export function startTicketboothHttp(dir: string, up: Upstream, opts: { connectionCache?: boolean } = {}): Promise<Ticketbooth> {
  const n = ++seq;
  const audit = join(dir, `audit-http-${n}.jsonl`);
  const config = join(dir, `http-${n}.yaml`);
  writeFileSync(
    config,
    `listeners:
  - name: web
    type: http
    listen: 127.0.0.1:0
    upstreams: { "${up.servername}": { ca: "${up.cert.certFile}", port: ${up.port} } }
${opts.connectionCache === false ? '    connectionCache: { enabled: false }\n' : ''}audit: { file: "${audit}" }
`,
  );
  return startTicketbooth(['serve', '--config', config], /web listening on 127\.0\.0\.1:(\d+)/, audit);
}

/** stunnel client mode to `up`, one service, logging per connection at notice (its default). */
export async function startStunnel(up: Upstream, protocol?: StunnelOptions['protocol']): Promise<Stunnel> {
  const st = await startStunnelClient(up, up.cert, { servername: up.servername, ...(protocol ? { protocol } : {}) });
  const openssl = /Running\s+with (OpenSSL \S+)/.exec(st.output())?.[1] ?? 'OpenSSL (version not logged)';
  return { name: 'stunnel', host: st.host, port: st.port, pid: st.pid, openssl, stop: () => st.stop() };
}
