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

export interface Finger {
  /** posttls-finger `-l level` against `nextHop:port` (the MX walk), mapped to smtp(8)'s verdict at that level. */
  verdict(level: 'dane' | 'dane-only', nextHop: string, port: number): Promise<SmtpVerdict & { log: string }>;
  close(): void;
}

/** The `{ skip }` reason when posttls-finger (package postfix) or unshare/mount (util-linux, mount) is missing. */
export function fingerMissing(): string | undefined {
  return missing('posttls-finger', 'unshare', 'mount');
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
  return {
    verdict: async (level, nextHop, port) => {
      const args = ['-v', '-c', '-l', level, '-M', 'dane', '-t', '10', '-T', '10', '-L', 'routine,certmatch', `${nextHop}:${port}`];
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
      return { ...smtpVerdict(level, log), log };
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * smtp(8)'s verdict from posttls-finger's log (one MX host per next hop). Where the two differ,
 * smtp(8)'s rules (smtp_tls_policy.c, dane_init) decide: without TLSA records posttls-finger checks
 * at `secure`, smtp(8) at `may` (no TLSA) or `encrypt` (none usable) under `dane`, and `dane-only`
 * defers; an insecure MX RRset makes posttls-finger half-DANE ("log verified as trusted") at either
 * level, smtp(8) too under `dane`, while `dane-only` refuses it ("non DNSSEC destination"). No CA
 * is configured on either side, so an unauthenticated session's class is Untrusted (a certificate
 * was shown) or Anonymous.
 */
export function smtpVerdict(level: 'dane' | 'dane-only', log: string): SmtpVerdict {
  const summary = /(Anonymous|Untrusted|Trusted|Verified) TLS connection established/.exec(log)?.[1] as SmtpVerdict['auth'] | undefined;
  if (/TLSA lookup error|Destination address lookup failed|No MX host|Failed to establish session/.test(log))
    return { outcome: 'defer', why: /^.*(?:TLSA lookup error|lookup failed|Failed to establish).*$/m.exec(log)?.[0] ?? 'no session' };
  const fallback = /no (usable )?TLSA records found, resorting to "secure"/.exec(log);
  if (fallback) {
    const level8 = fallback[1] ? 'encrypt' : 'may';
    if (level === 'dane-only') return { outcome: 'defer', why: `${fallback[0]}; smtp(8) dane-only: no usable TLSA, defer` };
    if (!summary) return { outcome: 'defer', why: `${fallback[0]}; no TLS session` };
    return { outcome: 'deliver', auth: summary === 'Anonymous' ? 'Anonymous' : 'Untrusted', why: `${fallback[0]}; smtp(8): ${level8}` };
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
