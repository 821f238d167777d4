import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { missing } from './interop.js';

const run = promisify(execFile);

/**
 * Postfix's own DANE verdict as an oracle: Debian's posttls-finger (Postfix 3.7), run live, its
 * log mapped to what smtp(8) would do with the same DNS and the same server. posttls-finger takes
 * its resolver from /etc/resolv.conf, which names no port: it runs in a mount namespace of its own
 * where a private resolv.conf (the rig's unbound on port 53 of another loopback address, AD bits
 * trusted) is bound over /etc/resolv.conf. Nothing outside that process sees the change.
 */

/** What smtp(8) does with a message for the next hop: delivers (with this authentication class, Postfix's words) or defers. */
export interface SmtpVerdict {
  outcome: 'deliver' | 'defer';
  auth?: 'Verified' | 'Trusted' | 'Untrusted' | 'Anonymous';
  /** How the verdict was read, for a failing assertion's message. */
  why: string;
}

type Level = 'dane' | 'dane-only' | 'may' | 'encrypt';

export interface Finger {
  /**
   * posttls-finger `-l level` against `nextHop:port` (the MX walk), mapped to smtp(8)'s verdict at
   * that level; `caFile`: the CAs smtp(8) trusts (smtp_tls_CAfile; posttls-finger -F), default none.
   */
  verdict(level: 'dane' | 'dane-only', nextHop: string, port: number, caFile?: string): Promise<SmtpVerdict & { log: string }>;
  close(): void;
}

/** The `{ skip }` reason when posttls-finger (package postfix) or unshare/mount (util-linux, mount) is missing, or this is not root. */
export function fingerMissing(): string | undefined {
  const tools = missing('posttls-finger', 'unshare', 'mount');
  if (tools) return tools;
  return process.getuid?.() === 0 ? undefined : 'needs root (posttls-finger gets its resolv.conf in a mount namespace)';
}

/** A posttls-finger whose resolver is `nameserver` (an address; port 53). */
export function startFinger(nameserver: string): Finger {
  const dir = mkdtempSync(join(tmpdir(), 'tb-finger-'));
  const resolvConf = join(dir, 'resolv.conf');
  // glibc 2.31+ clears the AD bit unless trust-ad is set; Postfix's DANE reads nothing else.
  writeFileSync(resolvConf, `nameserver ${nameserver}\noptions trust-ad edns0\n`);
  // Its own main.cf (MAIL_CONFIG): the machine's /etc/postfix settings play no part. No dnssec_probe:
  // the test world has no root zone to probe. smtp_tls_security_level = dane is what makes smtp(8)'s
  // insecure-MX policy `dane` (its default follows the global level); `-M dane` says the same to posttls-finger.
  writeFileSync(
    join(dir, 'main.cf'),
    'compatibility_level = 3.6\nsmtp_dns_support_level = dnssec\ndnssec_probe =\nsmtp_tls_security_level = dane\n',
  );
  const finger = async (level: Level, dest: string, caFile?: string): Promise<string> => {
    const ca = caFile ? ['-F', caFile] : [];
    const args = ['-v', '-c', '-l', level, '-M', 'dane', ...ca, '-t', '10', '-T', '10', '-L', 'routine,certmatch', dest];
    const shell = 'mount --bind "$0" /etc/resolv.conf && exec "$@"';
    let log: string;
    try {
      const out = await run('unshare', ['-m', '--', 'sh', '-c', shell, resolvConf, '/usr/sbin/posttls-finger', ...args], {
        env: { ...process.env, MAIL_CONFIG: dir },
        encoding: 'utf8',
        timeout: 60_000,
      });
      log = out.stdout + out.stderr;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      log = `${e.stdout ?? ''}${e.stderr ?? ''}\n(exit: ${String(err)})`;
    }
    // A verdict needs posttls-finger to have asked DNS: a rig or namespace that broke must fail the test, not read as "defer".
    if (!/posttls-finger: dns_query: /.test(log)) throw new Error(`posttls-finger ${args.join(' ')} did not run:\n${log}`);
    return log;
  };
  return {
    verdict: async (level, nextHop, port, caFile) => {
      const dest = `${nextHop}:${port}`;
      const log = await finger(level, dest, caFile);
      const v = smtpVerdict(level, log);
      if (!('fallback' in v)) return { ...v, log };
      // smtp(8) would go on at may/encrypt, which does not check what secure does: ask posttls-finger at that level.
      const again = await finger(v.fallback, dest, caFile);
      const auth = summaryOf(again);
      const both = `${log}\n--- -l ${v.fallback}\n${again}`;
      if (!auth) return { outcome: 'defer', why: `${v.why}; no TLS session at ${v.fallback}`, log: both };
      return { outcome: 'deliver', auth, why: `${v.why}; -l ${v.fallback}: ${auth}`, log: both };
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function summaryOf(log: string): SmtpVerdict['auth'] {
  return /(Anonymous|Untrusted|Trusted|Verified) TLS connection established/.exec(log)?.[1] as SmtpVerdict['auth'];
}

/**
 * smtp(8)'s verdict from posttls-finger's log (one MX host per next hop), or the level smtp(8)
 * would go on at. Where the two programs differ, smtp(8)'s rules (smtp_tls_policy.c, dane_init)
 * decide: without TLSA records posttls-finger checks at `secure`, while smtp(8) goes on at `may`
 * (no TLSA) or `encrypt` (none usable) under `dane` and defers under `dane-only`; an insecure MX
 * RRset makes posttls-finger half-DANE ("log verified as trusted") at either level, smtp(8) too
 * under `dane` (then a match is logged Trusted), while `dane-only` refuses it ("non DNSSEC destination").
 */
export function smtpVerdict(level: 'dane' | 'dane-only', log: string): SmtpVerdict | { fallback: 'may' | 'encrypt'; why: string } {
  const summary = summaryOf(log);
  if (/TLSA lookup error|Destination address lookup failed|Failed to establish session/.test(log))
    return { outcome: 'defer', why: /^.*(?:TLSA lookup error|lookup failed|Failed to establish).*$/m.exec(log)?.[0] ?? 'no session' };
  const fallback = /no (usable )?TLSA records found, resorting to "secure"/.exec(log);
  if (fallback) {
    if (level === 'dane-only') return { outcome: 'defer', why: `${fallback[0]}; smtp(8) dane-only: no usable TLSA, defer` };
    return { fallback: fallback[1] ? 'encrypt' : 'may', why: fallback[0] };
  }
  const halfDane = /MX RRset insecure: log verified as trusted/.test(log);
  if (halfDane && level === 'dane-only') return { outcome: 'defer', why: 'insecure MX RRset; smtp(8) dane-only: non DNSSEC destination' };
  const authenticated = halfDane ? 'Trusted' : 'Verified';
  const matched = /Matched DANE .*$|matched peername: .*$/m.exec(log)?.[0];
  if (summary === authenticated)
    return { outcome: 'deliver', auth: summary, why: `${halfDane ? 'half-DANE' : 'DANE'}: ${matched ?? summary}` };
  const failed = /(?:server )?certificate verification failed for .*$/m.exec(log)?.[0];
  return { outcome: 'defer', why: `${halfDane ? 'half-DANE' : 'DANE'} not authenticated: ${failed ?? summary ?? 'no TLS session'}` };
}
