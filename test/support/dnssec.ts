import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { queryDns, soaSerial, type DnsResponse } from './dns-query.js';
import { missing } from './interop.js';
import { freeUdpPort } from './ports.js';
import { startProcess, type RunningProcess } from './process.js';

/**
 * Real DNSSEC on loopback for DANE tests: an authoritative nsd serves zones signed by
 * ldns-signzone, and a validating unbound (no root anchor, one trust anchor per signed zone)
 * resolves them through stub zones. Everything lives in one temp dir; nothing from /etc is read.
 */

export interface ZoneSpec {
  /** e.g. 'dane.test' (no trailing dot) */
  origin: string;
  /** Zone-file lines after the SOA, NS and `ns` A record the helper writes (so `ns` is taken), e.g. 'mx1 60 IN A 127.0.0.2'. */
  records: string[];
  /** 'anchored': signed and trusted (AD); 'unsigned': insecure (no AD); 'wrong-anchor': signed, another key trusted (SERVFAIL). */
  security: 'anchored' | 'unsigned' | 'wrong-anchor';
  /** RRsets (absolute owner, no trailing dot) whose RRSIG is corrupted after signing: that RRset alone is bogus. */
  tamper?: Array<{ name: string; type: string }>;
}

export interface DnssecDns {
  /** unbound, as '127.0.0.1:PORT'; it answers REFUSED for names outside the zones (nothing goes to the internet). */
  resolver: string;
  /** With `{ port53: true }`: an address where unbound also answers on port 53, for libc (resolv.conf names no port). */
  port53?: string;
  /**
   * New zone contents signed with the same keys: a new nsd serves them on a new port, unbound's
   * config points there and `unbound-control reload` empties its caches. Resolves once unbound
   * answers every zone's SOA at the new serial (or SERVFAIL where the zone is bogus).
   */
  update(zones: ZoneSpec[]): Promise<void>;
  /** What nsd and unbound logged, for a failing test's message. */
  output(): string;
  stop(): Promise<void>;
}

export { queryDns, type DnsResponse } from './dns-query.js';

const run = promisify(execFile);
const DEADLINE_MS = 5000;

/** The `{ skip }` reason when a tool is missing (packages nsd, unbound, ldnsutils); with TICKETBOOTH_REQUIRE_INTEROP=1, throws. */
export function dnssecMissing(): string | undefined {
  const reason = missing('nsd', 'nsd-checkzone', 'unbound', 'unbound-control', 'unbound-checkconf', 'ldns-signzone', 'ldns-keygen');
  return reason && `${reason} (packages nsd, unbound, ldnsutils)`;
}

/** An ldns key's base path (no .key/.private) and its DS record, which unbound takes as a trust anchor. */
type Key = { base: string; ds: string };

/** What unbound must answer for the zone's SOA once it serves generation `serial`. */
function expectation(z: ZoneSpec): 'secure' | 'insecure' | 'bogus' {
  if (z.security === 'unsigned') return 'insecure';
  const soaTampered = z.tamper?.some((t) => sameName(t.name, z.origin) && t.type.toUpperCase() === 'SOA');
  return z.security === 'wrong-anchor' || soaTampered ? 'bogus' : 'secure';
}

function sameName(a: string, b: string): boolean {
  return a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();
}

/** Asks again (a few ms apart) until `ok` holds for the answers or the deadline passes; the error shows the last answers. */
async function pollUntil(what: string, ask: () => Promise<DnsResponse[]>, ok: (r: DnsResponse[]) => boolean): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  let last: string;
  for (;;) {
    try {
      const res = await ask();
      if (ok(res)) return;
      last = JSON.stringify(res.map((r) => ({ rcode: r.rcode, ad: r.flag_ad, serial: soaSerial(r) })));
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > end) throw new Error(`${what} not within ${DEADLINE_MS} ms; last: ${last}`);
    await delay(20);
  }
}

/** Waits for the process to log something (an event it reports), failing if it exits first. */
function waitForOutput(proc: RunningProcess, done: (out: string) => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!done(proc.output())) return;
      cleanup();
      resolve();
    };
    const exited = (): void => {
      cleanup();
      reject(new Error(`exited while waiting for ${what}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what} not within ${DEADLINE_MS} ms`));
    }, DEADLINE_MS);
    const cleanup = (): void => {
      clearTimeout(timer);
      proc.child.stdout?.off('data', check);
      proc.child.stderr?.off('data', check);
      proc.child.off('exit', exited);
    };
    // Registered after startProcess's own listeners, so output() already holds the chunk.
    proc.child.stdout?.on('data', check);
    proc.child.stderr?.on('data', check);
    proc.child.once('exit', exited);
    check();
  });
}

/** A program that cannot listen on port 0: pick a free port, and another if it was taken meanwhile. */
async function onFreePort(start: (port: number) => Promise<RunningProcess>): Promise<{ port: number; proc: RunningProcess }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeUdpPort();
    try {
      return { port, proc: await start(port) };
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

/** Signs and serves the zones; resolves once unbound answers each zone's SOA as its `security` says. One per test file. */
export async function startDnssec(initial: ZoneSpec[], opts: { port53?: boolean } = {}): Promise<DnssecDns> {
  const dir = mkdtempSync(join(tmpdir(), 'tb-dnssec-'));
  const keys = new Map<string, Key>(); // `${origin}/signer` and `${origin}/decoy`, kept across updates
  const logs: string[] = []; // output of nsd instances already replaced
  let serial = 0;
  let nsd: { port: number; proc: RunningProcess } | undefined;
  let unbound: { port: number; proc: RunningProcess } | undefined;
  const ubConf = join(dir, 'unbound.conf');
  const port53 = opts.port53 ? `127.53.${Math.floor(Math.random() * 256)}.${2 + Math.floor(Math.random() * 250)}` : undefined;

  const key = async (origin: string, role: 'signer' | 'decoy'): Promise<Key> => {
    const id = `${origin}/${role}`;
    const known = keys.get(id);
    if (known) return known;
    const kdir = join(dir, 'keys', origin, role);
    mkdirSync(kdir, { recursive: true });
    // One KSK (flags 257) as the only key, i.e. a CSK; urandom so that a fresh VM cannot block on entropy.
    const { stdout } = await run('ldns-keygen', ['-a', 'ECDSAP256SHA256', '-k', '-r', '/dev/urandom', origin], { cwd: kdir });
    const base = join(kdir, stdout.trim());
    const made = { base, ds: readFileSync(`${base}.ds`, 'utf8').trim() };
    keys.set(id, made);
    return made;
  };

  /** Writes (and signs) generation `serial` of every zone in its own dir; returns the files nsd serves. */
  const writeZones = async (zones: ZoneSpec[], gdir: string): Promise<Map<string, string>> => {
    const files = new Map<string, string>();
    for (const z of zones) {
      const plain = join(gdir, `${z.origin}.zone`);
      const soa = `@ 60 IN SOA ns hostmaster ${serial} 3600 600 86400 1`; // minimum 1 s: NODATA/NXDOMAIN do not linger
      writeFileSync(plain, [`$ORIGIN ${z.origin}.`, '$TTL 60', soa, '@ 60 IN NS ns', 'ns 60 IN A 127.0.0.1', ...z.records, ''].join('\n'));
      let served = plain;
      if (z.security !== 'unsigned') {
        served = `${plain}.signed`;
        // Inception a day back: unbound rejects signatures from the future, and clocks of VMs drift.
        const now = Math.floor(Date.now() / 1000);
        const period = ['-i', String(now - 86_400), '-e', String(now + 30 * 86_400)];
        await run('ldns-signzone', ['-o', `${z.origin}.`, ...period, '-f', served, plain, (await key(z.origin, 'signer')).base]);
        if (z.tamper?.length) writeFileSync(served, tamper(readFileSync(served, 'utf8'), z));
      } else if (z.tamper?.length) {
        throw new Error(`${z.origin}: tamper needs a signed zone`);
      }
      await run('nsd-checkzone', [z.origin, served]); // a zone nsd cannot load would otherwise just be missing
      files.set(z.origin, served);
    }
    return files;
  };

  const startNsd = async (zones: ZoneSpec[]): Promise<{ port: number; proc: RunningProcess }> => {
    const gdir = join(dir, `gen-${serial}`);
    mkdirSync(gdir);
    const files = await writeZones(zones, gdir);
    const started = await onFreePort((port) => {
      const conf = join(gdir, 'nsd.conf');
      writeFileSync(conf, nsdConf(gdir, port, files));
      return startProcess('nsd', ['-d', '-c', conf], { ready: /nsd started/, group: true });
    });
    // nsd logs a zone it could not load and serves without it: see every zone at this serial first.
    const direct = `127.0.0.1:${started.port}`;
    try {
      await pollUntil(
        `nsd serving serial ${serial}`,
        () => Promise.all(zones.map((z) => queryDns(direct, z.origin, 'SOA'))),
        (res) => res.every((r) => r.rcode === 'NOERROR' && soaSerial(r) === serial),
      );
    } catch (err) {
      await started.proc.stop();
      throw new Error(`${(err as Error).message}\n${started.proc.output()}`, { cause: err });
    }
    return started;
  };

  const writeUnboundConf = async (zones: ZoneSpec[], ubPort: number, nsdPort: number): Promise<void> => {
    const anchors: string[] = [];
    for (const z of zones) {
      if (z.security === 'anchored') anchors.push((await key(z.origin, 'signer')).ds);
      if (z.security === 'wrong-anchor') anchors.push((await key(z.origin, 'decoy')).ds);
    }
    writeFileSync(ubConf, unboundConf(dir, ubPort, nsdPort, zones, anchors, port53));
    await run('unbound-checkconf', [ubConf]);
  };

  /** unbound answers every zone's SOA as its security says, from generation `serial`. */
  const settled = (zones: ZoneSpec[], port: number): Promise<void> =>
    pollUntil(
      `unbound answering serial ${serial}`,
      () => Promise.all(zones.map((z) => queryDns(`127.0.0.1:${port}`, z.origin, 'SOA'))),
      (res) =>
        res.every((r, i) => {
          const want = expectation(zones[i]);
          if (want === 'bogus') return r.rcode === 'SERVFAIL';
          return r.rcode === 'NOERROR' && soaSerial(r) === serial && r.flag_ad === (want === 'secure');
        }),
    );

  const output = (): string => {
    const now = [nsd && `--- nsd (serial ${serial})\n${nsd.proc.output()}`, unbound && `--- unbound\n${unbound.proc.output()}`];
    return [...logs, ...now].filter(Boolean).join('\n');
  };

  const stop = async (): Promise<void> => {
    await unbound?.proc.stop();
    await nsd?.proc.stop();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    serial = 1;
    nsd = await startNsd(initial);
    const nsdPort = nsd.port;
    unbound = await onFreePort(async (port) => {
      await writeUnboundConf(initial, port, nsdPort);
      return startProcess('unbound', ['-d', '-c', ubConf], { ready: /start of service/ });
    });
    await settled(initial, unbound.port);
  } catch (err) {
    const out = output();
    await stop();
    throw new Error(`${(err as Error).message}\n${out}`, { cause: err });
  }
  const ub = unbound;

  return {
    resolver: `127.0.0.1:${ub.port}`,
    port53,
    output,
    stop,
    update: async (zones) => {
      serial++;
      // A fresh nsd on a new port next to the old one: no wait for the old port to come free, no race for it.
      const next = await startNsd(zones);
      try {
        await writeUnboundConf(zones, ub.port, next.port);
        // reload re-reads the config (new stub port, anchors) and empties every cache; the listening socket stays.
        const starts = (out: string): number => out.match(/start of service/g)?.length ?? 0;
        const before = starts(ub.proc.output());
        await run('unbound-control', ['-c', ubConf, 'reload']);
        await waitForOutput(ub.proc, (out) => starts(out) > before, 'unbound reload');
      } catch (err) {
        await next.proc.stop();
        throw err;
      }
      const old = nsd;
      nsd = next;
      await old?.proc.stop();
      logs.push(`--- nsd (serial ${serial - 1})\n${old?.proc.output()}`);
      await settled(zones, ub.port);
    },
  };
}

/** Corrupts the signature of each RRSIG covering a listed RRset (one base64 character changed; still well-formed). */
function tamper(signed: string, z: ZoneSpec): string {
  const lines = signed.split('\n');
  for (const t of z.tamper ?? []) {
    let hits = 0;
    for (const [i, line] of lines.entries()) {
      const f = line.split(/\s+/);
      if (f[3] !== 'RRSIG' || !sameName(f[0], t.name) || f[4]?.toUpperCase() !== t.type.toUpperCase()) continue;
      const sig = f[f.length - 1];
      lines[i] = `${f.slice(0, -1).join(' ')} ${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
      hits++;
    }
    if (hits === 0) throw new Error(`${z.origin}: no RRSIG for ${t.name} ${t.type} to tamper with`);
  }
  return lines.join('\n');
}

function nsdConf(gdir: string, port: number, files: Map<string, string>): string {
  const zones = [...files].map(([origin, file]) => `zone:\n  name: "${origin}"\n  zonefile: "${file}"\n`);
  // No chroot, no privilege drop, no database, logs to stderr (-d without logfile); state files in our dir.
  return `server:
  ip-address: 127.0.0.1
  port: ${port}
  do-ip6: no
  username: ""
  chroot: ""
  database: ""
  zonesdir: "${gdir}"
  zonelistfile: "${gdir}/zone.list"
  xfrdfile: "${gdir}/xfrd.state"
  xfrdir: "${gdir}"
  pidfile: "${gdir}/nsd.pid"
  server-count: 1
  verbosity: 1
remote-control:
  control-enable: no
${zones.join('')}`;
}

function unboundConf(dir: string, port: number, nsdPort: number, zones: ZoneSpec[], anchors: string[], port53?: string): string {
  // unbound's default local zone `test.` (RFC 6761) answers NXDOMAIN below it: a transparent local
  // zone per test zone lets those through; `.` refuse keeps every other name off the internet.
  const local = zones.map((z) => `  local-zone: "${z.origin}." transparent\n`).join('');
  const stubs = zones.map((z) => `stub-zone:\n  name: "${z.origin}."\n  stub-addr: 127.0.0.1@${nsdPort}\n`).join('');
  return `server:
  interface: 127.0.0.1
${port53 ? `  interface: ${port53}@53\n` : ''}  port: ${port}
  do-ip6: no
  username: ""
  chroot: ""
  directory: "${dir}"
  pidfile: "${dir}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  val-log-level: 2
  num-threads: 1
  do-not-query-localhost: no
  module-config: "validator iterator"
  harden-dnssec-stripped: yes
  trust-anchor-signaling: no
  local-zone: "." refuse
${local}${anchors.map((a) => `  trust-anchor: "${a.replace(/\s+/g, ' ')}"\n`).join('')}${stubs}remote-control:
  control-enable: yes
  control-interface: "${dir}/unbound.ctl"
  control-use-cert: no
`;
}
