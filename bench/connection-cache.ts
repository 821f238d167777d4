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
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeCert } from '../test/support/certs.js';
import { missing } from '../test/support/interop.js';
import { freeTcpPort } from '../test/support/ports.js';
import { startPostfix, type Postfix } from '../test/support/postfix.js';
import { dial, sendMessage } from '../test/support/smtp-client.js';
import { ensureBuilt } from './peers/build.js';
import { charged } from './peers/cpu.js';
import { startTicketboothHttp, startTicketboothSmarthost } from './peers/contenders.js';
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

const REQUESTS = 200;

/** `REQUESTS` sequential plain-http requests through the proxy, a client connection each: requests/s. */
async function requests(proxyPort: number, originPort: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    await new Promise<void>((resolve, reject) => {
      const url = `http://localhost:${originPort}/r${i}`;
      const req = httpRequest(
        { host: '127.0.0.1', port: proxyPort, path: url, headers: { host: `localhost:${originPort}` }, agent: false },
        (res) => {
          if (res.statusCode !== 200) reject(new Error(`${url}: ${res.statusCode}`));
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', reject);
      req.end();
    });
  }
  return REQUESTS / ((performance.now() - started) / 1000);
}

/** HTTP egress with kept origin connections and without: requests/s and the origin's handshakes, reps interleaved. */
async function httpPart(dir: string, stops: Array<() => Promise<void>>): Promise<{ lines: string[]; figures: Record<string, Figure> }> {
  const cert = makeCert(['localhost'], dir);
  let handshakes = 0;
  const origin = createHttpsServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    req.resume();
    req.on('end', () => res.end('hello'));
  });
  origin.on('secureConnection', () => handshakes++);
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  stops.push(async () => {
    origin.closeAllConnections();
    origin.close();
  });
  const up = { host: '127.0.0.1', port: (origin.address() as AddressInfo).port, servername: 'localhost', cert };
  const on = await startTicketboothHttp(dir, up);
  const off = await startTicketboothHttp(dir, up, { connectionCache: false });
  stops.push(
    () => on.stop(),
    () => off.stop(),
  );
  const got: Record<'on' | 'off', Array<{ rate: number; handshakes: number }>> = { on: [], off: [] };
  for (let rep = 0; rep < REPS; rep++) {
    for (const [name, tb] of rep % 2
      ? ([
          ['off', off],
          ['on', on],
        ] as const)
      : ([
          ['on', on],
          ['off', off],
        ] as const)) {
      const before = handshakes;
      got[name].push({ rate: await requests(tb.port, up.port), handshakes: handshakes - before });
    }
  }
  const rate = (n: 'on' | 'off'): number => median(got[n].map((g) => g.rate));
  const ratio = rate('on') / rate('off');
  return {
    lines: [
      '',
      `HTTP egress, ${REQUESTS} sequential requests (a client connection each) to a Node https origin:`,
      ...table(
        ['origin connections', 'requests/s (median)', 'origin handshakes', `each rep (${REPS})`],
        (['on', 'off'] as const).map((n) => [
          n === 'on' ? 'kept (default)' : 'one per request',
          rate(n).toFixed(0),
          String(median(got[n].map((g) => g.handshakes))),
          got[n].map((g) => g.rate.toFixed(0)).join(' '),
        ]),
      ),
      `kept / one per request: ${ratio.toFixed(2)}x requests/s`,
    ],
    figures: {
      http_kept_requests_per_s: { value: Math.round(rate('on')), unit: 'requests/s' },
      http_per_request_requests_per_s: { value: Math.round(rate('off')), unit: 'requests/s' },
      http_kept_over_per_request: { value: Math.round(100 * ratio) / 100, unit: 'ratio', goal: '>= 3', met: ratio >= 3 },
      http_kept_handshakes: {
        value: median(got.on.map((g) => g.handshakes)),
        unit: `origin handshakes per ${REQUESTS} requests`,
        goal: '1',
        met: got.on.every((g) => g.handshakes <= 1),
      },
    },
  };
}

export async function runSection(): Promise<Section> {
  const name = 'Connection cache: a one-message-per-connection Postfix (100-message bursts), and HTTP egress';
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
    const http = await httpPart(dir, stops);
    return {
      name,
      lines: [
        ...table(['relay', 'msg/s (median)', 'dest handshakes', 'ticketbooth CPU ms/msg', `msg/s each rep (${REPS})`], rows),
        `cache on / cache off: ${overOff.toFixed(2)}x msg/s; cache on / Postfix direct: ${overDirect.toFixed(2)}x`,
        ...http.lines,
      ],
      figures: { ...figures, ...http.figures },
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
