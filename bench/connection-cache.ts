/**
 * The SMTP connection cache beside its peers, in one run (alone: `npm run bench -- connection-cache`):
 * a legacy Postfix that opens one connection per message (smtp_connection_cache_on_demand = no,
 * its default destination concurrency) takes a burst of messages on hold (its own queue writes
 * are not what is measured), then releases them all and relays them
 * a. through ticketbooth with the connection cache (the default),
 * b. through ticketbooth without it (`connectionCache: { enabled: false }`),
 * c. straight to the destination with its own TLS client (`encrypt`, tlsmgr's session cache on).
 * Contenders take turns, rep by rep. msg/s is the burst over the time from the release
 * (`postsuper -H ALL`, `postqueue -f`) to the legacy Postfix's last `status=sent`; handshakes are
 * the destination's own `TLS connection established` lines. Needs postfix (Debian package).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { missing } from '../test/support/interop.js';
import { freeTcpPort } from '../test/support/ports.js';
import { startPostfix, type Postfix } from '../test/support/postfix.js';
import { dial, sendMessage } from '../test/support/smtp-client.js';
import { ensureBuilt } from './peers/build.js';
import { charged } from './peers/cpu.js';
import { startTicketboothSmarthost } from './peers/contenders.js';
import { startDestination } from './postfix-destination.js';
import { median, table, type Figure, type Section } from './section.js';

const run = promisify(execFile);
const MESSAGES = 100;
/** The legacy Postfix's deliveries at once (smtp_destination_concurrency_limit): how many upstream connections the cache may need. */
const CONCURRENCY = 10;
const REPS = 3;
const BODY = `Subject: bench\r\nFrom: a@legacy.test\r\nTo: b@dest.test\r\n\r\n${'Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n'.repeat(35)}`;
const TLS_LINE = /TLS connection established from/g;
const SENT_LINE = /status=sent/g;
/** cleanup(8) on a message put on hold by the HOLD access action. */
const HELD_LINE = /: hold: /g;

type Name = 'cache on' | 'cache off' | 'Postfix direct';

const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;

/** A legacy Postfix relaying everything to `relayhost`, one connection per message. */
async function legacyClient(relayhost: string, tls: Record<string, string>): Promise<{ postfix: Postfix; port: number }> {
  const port = await freeTcpPort();
  const postfix = await startPostfix({
    smtpd: `127.0.0.1:${port}`,
    main: {
      myhostname: 'legacy.bench.test',
      relayhost,
      smtp_connection_cache_on_demand: 'no',
      smtp_destination_concurrency_limit: String(CONCURRENCY),
      // Every message injected goes on hold, to be released at once.
      smtpd_client_restrictions: 'check_client_access static:HOLD',
      ...tls,
    },
  });
  return { postfix, port };
}

interface Burst {
  seconds: number;
  handshakes: number;
  /** ticketbooth's CPU (user + system) while the burst was relayed, NaN for Postfix direct. */
  cpuMs: number;
}

/** One burst: MESSAGES injected on hold, then released; seconds from the release until all were sent, and the destination's handshakes. */
async function burst(legacy: { postfix: Postfix; port: number }, dest: Postfix, pid?: number): Promise<Burst> {
  const config = legacy.postfix.configDir;
  const sentBefore = count(legacy.postfix.log(), SENT_LINE);
  const heldBefore = count(legacy.postfix.log(), HELD_LINE);
  const d = await dial(legacy.port);
  await d.cmd('EHLO injector.test');
  for (let i = 0; i < MESSAGES; i++) {
    const r = await sendMessage(d, 'a@legacy.test', ['b@dest.test'], BODY);
    if (r.final.code !== 250) throw new Error(`injection refused: ${r.final.raw}`);
  }
  await d.cmd('QUIT');
  await legacy.postfix.waitForLog(HELD_LINE, heldBefore + MESSAGES, 60_000);
  const destBefore = dest.log().length;
  const started = performance.now();
  const { cpu } = await charged(pid, async () => {
    await run('postsuper', ['-c', config, '-H', 'ALL']);
    await run('postqueue', ['-c', config, '-f']);
    await legacy.postfix.waitForLog(SENT_LINE, sentBefore + MESSAGES, 120_000);
  });
  const seconds = (performance.now() - started) / 1000;
  return { seconds, handshakes: count(dest.log().slice(destBefore), TLS_LINE), cpuMs: cpu * 1000 };
}

export async function runSection(): Promise<Section> {
  const name = 'SMTP connection cache: a one-message-per-connection Postfix, 100-message bursts';
  const skip = missing('postfix');
  if (skip) return { name, lines: [`skipped: ${skip}`] };
  const dir = mkdtempSync(join(tmpdir(), 'tb-bench-cache-'));
  const stops: Array<() => Promise<void>> = [];
  try {
    await ensureBuilt();
    const d = await startDestination();
    stops.push(() => d.postfix.stop());
    const up = { host: d.address, port: 25, servername: 'mx.dest.test', cert: d.cert };
    const on = await startTicketboothSmarthost(dir, up);
    const off = await startTicketboothSmarthost(dir, up, { connectionCache: false });
    stops.push(
      () => on.stop(),
      () => off.stop(),
    );
    const legacy: Record<Name, { postfix: Postfix; port: number }> = {
      'cache on': await legacyClient(`[127.0.0.1]:${on.port}`, { smtp_tls_security_level: 'none' }),
      'cache off': await legacyClient(`[127.0.0.1]:${off.port}`, { smtp_tls_security_level: 'none' }),
      'Postfix direct': await legacyClient(`[${d.address}]:25`, {
        smtp_tls_security_level: 'encrypt',
        smtp_tls_session_cache_database: 'btree:${data_directory}/smtp_scache',
      }),
    };
    for (const l of Object.values(legacy)) stops.push(() => l.postfix.stop());

    const names = Object.keys(legacy) as Name[];
    const pids: Record<Name, number | undefined> = { 'cache on': on.pid, 'cache off': off.pid, 'Postfix direct': undefined };
    const got: Record<Name, Burst[]> = { 'cache on': [], 'cache off': [], 'Postfix direct': [] };
    for (const n of names) await burst(legacy[n], d.postfix, pids[n]); // warm-up: processes started, sessions cached
    for (let rep = 0; rep < REPS; rep++)
      for (const n of rep % 2 ? [...names].reverse() : names) got[n].push(await burst(legacy[n], d.postfix, pids[n]));

    const rate = (n: Name): number => median(got[n].map((b) => MESSAGES / b.seconds));
    const handshakes = (n: Name): number => median(got[n].map((b) => b.handshakes));
    const cpuPerMessage = (n: Name): number => median(got[n].map((b) => b.cpuMs / MESSAGES));
    const figures: Record<string, Figure> = {};
    const rows = names.map((n) => {
      figures[`${n.replace(/ /g, '_').toLowerCase()}_msg_per_s`] = { value: Math.round(rate(n)), unit: 'msg/s' };
      figures[`${n.replace(/ /g, '_').toLowerCase()}_handshakes`] = {
        value: handshakes(n),
        unit: `destination TLS handshakes per ${MESSAGES} messages`,
      };
      const cpu = cpuPerMessage(n);
      if (Number.isFinite(cpu))
        figures[`${n.replace(/ /g, '_').toLowerCase()}_cpu_per_message`] = { value: Math.round(100 * cpu) / 100, unit: 'ms (ticketbooth)' };
      const reps = got[n].map((b) => (MESSAGES / b.seconds).toFixed(0)).join(' ');
      return [n, rate(n).toFixed(0), String(handshakes(n)), Number.isFinite(cpu) ? cpu.toFixed(2) : '-', reps];
    });
    const overOff = rate('cache on') / rate('cache off');
    const overDirect = rate('cache on') / rate('Postfix direct');
    figures.cache_on_over_off = { value: Math.round(100 * overOff) / 100, unit: 'ratio', goal: '>= 2', met: overOff >= 2 };
    figures.cache_on_over_postfix_direct = {
      value: Math.round(100 * overDirect) / 100,
      unit: 'ratio',
      goal: '>= 1.5',
      met: overDirect >= 1.5,
    };
    const most = Math.max(...got['cache on'].map((b) => b.handshakes));
    figures.cache_on_most_handshakes = { value: most, unit: `per ${MESSAGES} messages`, goal: '<= 10', met: most <= 10 };
    return {
      name,
      lines: [
        ...table(['relay', 'msg/s (median)', 'dest handshakes', 'ticketbooth CPU ms/msg', `msg/s each rep (${REPS})`], rows),
        `cache on / cache off: ${overOff.toFixed(2)}x msg/s; cache on / Postfix direct: ${overDirect.toFixed(2)}x`,
      ],
      figures,
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
