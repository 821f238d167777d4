import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { until as untilDone } from './until.js';

const run = promisify(execFile);

/**
 * A private Postfix instance in its own temp dir (config, queue, data, log), as interop-recipes.md
 * describes: Debian's master.cf without chroot and without the default `smtp inet` service, plus
 * the smtpd services a test names. Stop it in `after`.
 */
export interface PostfixOptions {
  /** main.cf settings on top of the instance's paths and loopback defaults. */
  main: Record<string, string>;
  /** Where smtpd listens, e.g. `127.0.0.1:2525` (becomes a master.cf `inet` service). */
  smtpd: string;
  /** Extra `-o name=value` for that smtpd service. */
  smtpdOptions?: Record<string, string>;
  /** A virtual maildir delivery for these domains (count the files to count messages). */
  maildirDomains?: string[];
}

export interface Postfix {
  dir: string;
  configDir: string;
  /** The maildir's `new` directory (when maildirDomains was given). */
  maildir: string;
  log(): string;
  /** Resolves when `pattern` matched at least `count` times in the log. */
  waitForLog(pattern: RegExp, count?: number, timeoutMs?: number): Promise<void>;
  /** Files delivered to the maildir. */
  delivered(): string[];
  /** Resolves once `n` messages are in the maildir. */
  waitForDelivered(n: number, timeoutMs?: number): Promise<string[]>;
  stop(): Promise<void>;
}

const NOBODY = 65534;

/**
 * main.cf settings of a destination that takes STARTTLS with TLS 1.3 only and logs, per
 * connection, whether it resumed (`summary, cache`: `Reusing old session`), the verdict the
 * resumption tests read.
 */
export function tls13Destination(cert: { certFile: string; keyFile: string }): Record<string, string> {
  return {
    smtpd_tls_security_level: 'may',
    smtpd_tls_cert_file: cert.certFile,
    smtpd_tls_key_file: cert.keyFile,
    smtpd_tls_protocols: '>=TLSv1.3',
    smtpd_tls_loglevel: 'summary, cache',
  };
}

export async function startPostfix(opts: PostfixOptions): Promise<Postfix> {
  const dir = mkdtempSync(join(tmpdir(), 'tb-postfix-'));
  chmodSync(dir, 0o755);
  const configDir = join(dir, 'etc');
  const queue = join(dir, 'queue');
  const data = join(dir, 'data');
  const mailBase = join(dir, 'mail');
  const logFile = join(dir, 'maillog');
  mkdirSync(configDir);
  mkdirSync(queue);
  mkdirSync(data);
  chownSync(data, uid('postfix'), gid('postfix'));
  mkdirSync(mailBase);
  chownSync(mailBase, NOBODY, NOBODY);

  const main: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: queue,
    data_directory: data,
    maillog_file: logFile,
    maillog_file_prefixes: dir,
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    mydestination: '',
    alias_maps: '',
    alias_database: '',
    local_recipient_maps: '',
    biff: 'no',
    ...(opts.maildirDomains
      ? {
          virtual_mailbox_domains: opts.maildirDomains.join(' '),
          virtual_mailbox_base: mailBase,
          virtual_mailbox_maps: 'static:box/',
          virtual_uid_maps: `static:${NOBODY}`,
          virtual_gid_maps: `static:${NOBODY}`,
          virtual_minimum_uid: '100',
        }
      : {}),
    ...opts.main,
  };
  writeFileSync(
    join(configDir, 'main.cf'),
    Object.entries(main)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n') + '\n',
  );

  // Debian's master.cf: no chroot (column 5), no default port-25 smtpd; then ours.
  const master = readFileSync('/etc/postfix/master.cf', 'utf8')
    .split('\n')
    .filter((l) => !/^smtp\s+inet\s/.test(l))
    .map((l) => {
      const cols = l.split(/\s+/);
      if (l.startsWith('#') || l.startsWith(' ') || cols.length < 8) return l;
      cols[4] = 'n';
      return cols.join(' ');
    });
  const extra = Object.entries(opts.smtpdOptions ?? {}).map(([k, v]) => `  -o ${k}=${v}`);
  master.push(`${opts.smtpd} inet n - n - - smtpd`, ...extra);
  writeFileSync(join(configDir, 'master.cf'), master.join('\n') + '\n');

  await run('postfix', ['-c', configDir, 'post-install', 'create-missing']);
  try {
    // `postfix start` explains its failures only on a terminal: `script` gives it one.
    await run('script', ['-qc', `postfix -c ${configDir} start`, '/dev/null']);
  } catch (err) {
    throw new Error(`postfix start failed: ${(err as { stdout?: string }).stdout ?? String(err)}`, { cause: err });
  }
  const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const newDir = join(mailBase, 'box', 'new');
  const delivered = (): string[] => (existsSync(newDir) ? readdirSync(newDir).map((f) => join(newDir, f)) : []);
  const until = (done: () => boolean, timeoutMs: number, what: string): Promise<void> =>
    untilDone(done, timeoutMs, () => `${what} (postfix ${dir})\n${log().slice(-3000)}`);
  const [host, port] = splitHostPort(opts.smtpd);
  await waitForPort(host, port, 15_000);

  return {
    dir,
    configDir,
    maildir: newDir,
    log,
    waitForLog: (pattern, count = 1, timeoutMs = 30_000) =>
      until(
        () =>
          (log().match(new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : pattern.flags + 'g')) ?? []).length >=
          count,
        timeoutMs,
        `${count} × ${pattern}`,
      ),
    delivered,
    waitForDelivered: async (n, timeoutMs = 60_000) => {
      await until(() => delivered().length >= n, timeoutMs, `${n} delivered messages`);
      return delivered();
    },
    stop: async () => {
      await run('postfix', ['-c', configDir, 'stop']).catch(() => undefined);
      await until(
        () => !existsSync(join(queue, 'pid', 'master.pid')) || !masterAlive(join(queue, 'pid', 'master.pid')),
        10_000,
        'master exit',
      ).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function masterAlive(pidFile: string): boolean {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i), Number(s.slice(i + 1))];
}

/** Waits until the port takes a connection (the service is up), polling with a bound. */
async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function uid(user: string): number {
  return Number(
    readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${user}:`))
      ?.split(':')[2] ?? NaN,
  );
}

function gid(group: string): number {
  return Number(
    readFileSync('/etc/group', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${group}:`))
      ?.split(':')[2] ?? NaN,
  );
}
