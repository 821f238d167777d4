import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fillExample, unpacked, unpackedEnv } from './unpacked-debs.js';
import { until } from './until.js';

/**
 * Legacy MTAs as private instances, each in a temp dir with its config from examples/mta/ and its
 * own loopback port: they take mail from the test in cleartext and relay all of it to ticketbooth.
 */
export interface LegacyMta {
  /** The loopback port it takes mail on. */
  port: number;
  dir: string;
  /** Its log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Runs a daemon in the foreground in its own process group; ready once its port takes connections. */
async function daemon(cmd: string, args: string[], port: number, dir: string, log: () => string): Promise<LegacyMta> {
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd: dir, env: unpackedEnv() });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (err) => (out += `\nspawn: ${err.message}`));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  const signal = (sig: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, sig);
    } catch {
      /* already gone */
    }
  };
  const stop = async (): Promise<void> => {
    if (alive()) {
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    // Workers it forked (deliveries) are in its group too.
    signal('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const fullLog = (): string => `${out}\n${log()}`;
  try {
    await until(
      async () => {
        if (!alive()) throw new Error(`${cmd} exited (${child.exitCode ?? child.signalCode}) before it listened:\n${fullLog()}`);
        return accepts(port);
      },
      15_000,
      () => `${cmd} to listen on 127.0.0.1:${port}:\n${fullLog()}`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, dir, log: fullLog, stop };
}

function ids(name: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no system user ${name} (scripts/install-mtas.sh creates it)`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/**
 * Exim 4 with examples/mta/exim4.conf (`exim4 -C FILE -bdf`); it drops to Debian-exim, which owns
 * the spool. `lmtp`: its remote_smtp transport replaced by examples/mta/exim4-lmtp-transport.conf;
 * `main`: lines added to its main section.
 */
export async function startExim(port: number, ticketboothPort: number, opts: { lmtp?: boolean; main?: string } = {}): Promise<LegacyMta> {
  const dir = tempDir('tb-exim-');
  const spool = join(dir, 'spool');
  mkdirSync(join(spool, 'log'), { recursive: true });
  const exim = ids('Debian-exim');
  for (const d of [spool, join(spool, 'log')]) chownSync(d, exim.uid, exim.gid);
  const conf = join(dir, 'exim4.conf');
  const text = fillExample('exim4.conf', {
    SPOOL_DIR: spool,
    LISTEN_PORT: port,
    TICKETBOOTH_PORT: ticketboothPort,
    EXIM_PATH: unpacked('exim4'),
  }).replace(/^begin acl$/m, `${opts.main ?? ''}begin acl`); // `main`: main-section settings on top of the example's
  // The transport block runs from its name to the blank line before `begin retry`.
  writeFileSync(
    conf,
    opts.lmtp
      ? text.replace(/^remote_smtp:\n(?: .*\n)+/m, fillExample('exim4-lmtp-transport.conf', { TICKETBOOTH_PORT: ticketboothPort }))
      : text,
  );
  const mainlog = join(spool, 'log', 'mainlog');
  const log = (): string => (existsSync(mainlog) ? readFileSync(mainlog, 'utf8') : '');
  return daemon(unpacked('exim4'), ['-C', conf, '-bdf'], port, dir, log);
}

/**
 * OpenSMTPD with examples/mta/smtpd.conf (`smtpd -d -f FILE`). Its spool (/var/spool/smtpd) and
 * control socket (/run/smtpd.sock) are compiled in: it runs in a mount namespace of its own
 * (`unshare --mount`) with a temp dir bound over each, so it shares neither with another instance.
 */
export async function startOpenSmtpd(port: number, ticketboothPort: number): Promise<LegacyMta> {
  const dir = tempDir('tb-opensmtpd-');
  const spool = join(dir, 'spool');
  const run = join(dir, 'run');
  mkdirSync(spool, { mode: 0o711 });
  chmodSync(spool, 0o711);
  mkdirSync(run);
  // The mount point, and the empty directory its unprivileged processes chroot into (the package's postinst makes both).
  mkdirSync('/var/spool/smtpd', { recursive: true });
  mkdirSync('/var/lib/opensmtpd/empty', { recursive: true });
  const conf = join(dir, 'smtpd.conf');
  writeFileSync(conf, fillExample('smtpd.conf', { LISTEN_PORT: port, TICKETBOOTH_PORT: ticketboothPort }));
  const script = `mount --bind ${spool} /var/spool/smtpd && mount --bind ${run} /run && exec ${unpacked('smtpd')} -d -f ${conf}`;
  return daemon('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], port, dir, () => '');
}

/**
 * sendmail with a .cf built by m4 from examples/mta/sendmail.mc and the unpacked sendmail-cf
 * (`sendmail -C FILE -bD`: a daemon in the foreground). Without syslog here it logs nowhere; its
 * queue is listed on failure.
 */
export async function startSendmail(port: number, ticketboothPort: number): Promise<LegacyMta> {
  const dir = tempDir('tb-sendmail-');
  const queue = join(dir, 'mqueue');
  mkdirSync(queue, { mode: 0o700 });
  // Host names from /etc/hosts only: no DNS on this loopback-only machine.
  writeFileSync(join(dir, 'service.switch'), 'hosts files\n');
  const mc = join(dir, 'sendmail.mc');
  writeFileSync(mc, fillExample('sendmail.mc', { SPOOL_DIR: dir, LISTEN_PORT: port, TICKETBOOTH_PORT: ticketboothPort }));
  const cfDir = join(unpacked('sendmail-cf'), '../..');
  const cf = join(dir, 'sendmail.cf');
  writeFileSync(cf, execFileSync('m4', [`-D_CF_DIR_=${cfDir}/`, unpacked('sendmail-cf'), mc], { encoding: 'utf8' }));
  const log = (): string => `queue: ${readdirSync(queue).join(' ')}`;
  // sendmail sleeps 60 s at start when the host name has no dot and no FQDN in /etc/hosts ("My unqualified host
  // name unknown"): it runs in a UTS namespace of its own, named legacy-sendmail.test.
  const script = `hostname legacy-sendmail.test && exec ${unpacked('sendmail')} -C ${cf} -bD`;
  return daemon('unshare', ['--uts', 'sh', '-c', script], port, dir, log);
}
