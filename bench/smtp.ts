/**
 * The SMTP smarthost under load, side by side in one run (run alone: `node --import tsx bench/smtp.ts`):
 * senders that each open one connection per message (a legacy MTA without connection caching)
 * deliver for a fixed time with 1, 8 and 32 at once,
 *   a. straight to the destination (cleartext: what the legacy MTA does without ticketbooth),
 *   b. through ticketbooth (relay, `tls: encrypt`), which does STARTTLS to the destination.
 * The destination is a real Postfix (STARTTLS, TLS 1.3 only, `discard` delivery); its own log
 * gives the share of resumed handshakes. Ticketbooth runs as a child process (the CLI as shipped);
 * its peak memory is the kernel's VmHWM for that process. Needs postfix (Debian package).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCert } from '../test/support/certs.js';
import { missing } from '../test/support/interop.js';
import { freeLoopbackAddress } from '../test/support/ports.js';
import { startPostfix, type Postfix } from '../test/support/postfix.js';
import { dial, sendMessage } from '../test/support/smtp-client.js';

/** The shape of a bench section (see bench/section.ts): lines for people, figures for results.json. */
export interface BenchSection {
  name: string;
  lines: string[];
  figures?: Record<string, { value: number; unit: string; goal?: string; met?: boolean }>;
}

const SECONDS_PER_RUN = 4;
const CONCURRENCY = [1, 8, 32];
const BODY = `Subject: bench\r\nFrom: a@legacy.test\r\nTo: b@dest.test\r\n\r\n${'Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n'.repeat(35)}`;

interface Load {
  sent: number;
  failed: number;
  perSecond: number;
}

/** `senders` loops, each: connect, EHLO, one message, QUIT; for `seconds`. */
async function load(port: number, host: string, senders: number, seconds: number): Promise<Load> {
  const deadline = performance.now() + seconds * 1000;
  let sent = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: senders }, async () => {
      while (performance.now() < deadline) {
        try {
          const d = await dial(port, host);
          await d.cmd('EHLO legacy.test');
          const r = await sendMessage(d, 'a@legacy.test', ['b@dest.test'], BODY);
          if (r.final.code === 250) sent++;
          else failed++;
          await d.cmd('QUIT').catch(() => undefined);
          d.close();
        } catch {
          failed++;
        }
      }
    }),
  );
  return { sent, failed, perSecond: sent / ((performance.now() - started) / 1000) };
}

interface Ticketbooth {
  child: ChildProcess;
  port: number;
  peakRssMiB(): number;
  stop(): Promise<void>;
}

async function startTicketbooth(dir: string, destination: string): Promise<Ticketbooth> {
  const config = join(dir, 'ticketbooth.yaml');
  writeFileSync(
    config,
    `listeners:
  - name: smarthost
    type: smtp
    listen: 127.0.0.1:0
    hostname: relay.bench.test
    maxConnections: 200
    route: { mode: relay, host: "${destination}", port: 25 }
    tls: { level: encrypt }
audit: { file: "${join(dir, 'audit.jsonl')}" }
shutdownTimeoutSeconds: 5
`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ticketbooth did not start:\n${err}`)), 20_000);
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /listening on [^\s]+:(\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`ticketbooth exited ${code}:\n${err}`)));
  });
  return {
    child,
    port,
    peakRssMiB: () => {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : NaN;
    },
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function count(log: string, re: RegExp): number {
  return (log.match(re) ?? []).length;
}

export async function run(): Promise<BenchSection> {
  const name = 'SMTP smarthost: messages per second, one connection per message';
  const skip = missing('postfix');
  if (skip) return { name, lines: [`skipped: ${skip}`] };
  const dir = mkdtempSync(join(tmpdir(), 'tb-bench-smtp-'));
  let dest: Postfix | undefined;
  let tb: Ticketbooth | undefined;
  try {
    const address = await freeLoopbackAddress(25);
    const cert = makeCert(['mx.dest.test', address]);
    dest = await startPostfix({
      smtpd: `${address}:25`,
      main: {
        myhostname: 'mx.dest.test',
        relay_domains: 'dest.test',
        relay_transport: 'discard',
        smtpd_tls_security_level: 'may',
        smtpd_tls_cert_file: cert.certFile,
        smtpd_tls_key_file: cert.keyFile,
        smtpd_tls_protocols: '>=TLSv1.3',
        smtpd_tls_loglevel: 'summary, cache',
        default_process_limit: '200',
      },
    });
    tb = await startTicketbooth(dir, address);
    const idleMiB = tb.peakRssMiB();

    const lines: string[] = [];
    const figures: NonNullable<BenchSection['figures']> = {};
    lines.push(`${'senders'.padEnd(8)} ${'direct (cleartext)'.padStart(20)} ${'via ticketbooth (TLS)'.padStart(22)} ${'ratio'.padStart(6)} ${'resumed at dest'.padStart(16)}`);
    let totalResumed = 0;
    let totalTls = 0;
    for (const n of CONCURRENCY) {
      const direct = await load(25, address, n, SECONDS_PER_RUN);
      const before = dest.log().length;
      const prior = count(dest.log(), /TLS connection established from/g);
      const via = await load(tb.port, '127.0.0.1', n, SECONDS_PER_RUN);
      // Postfix writes its log asynchronously: wait until every delivery's TLS line is in.
      await dest.waitForLog(/TLS connection established from/, prior + via.sent, 10_000).catch(() => undefined);
      const segment = dest.log().slice(before);
      const tls = count(segment, /TLS connection established from/g);
      const resumed = count(segment, /Reusing old session/g);
      figures[`direct_${n}_senders`] = { value: Math.round(direct.perSecond), unit: 'msg/s' };
      figures[`via_ticketbooth_${n}_senders`] = { value: Math.round(via.perSecond), unit: 'msg/s' };
      totalResumed += resumed;
      totalTls += tls;
      lines.push(
        `${String(n).padEnd(8)} ${`${direct.perSecond.toFixed(0)} msg/s`.padStart(20)} ${`${via.perSecond.toFixed(0)} msg/s`.padStart(22)} ${(via.perSecond / direct.perSecond).toFixed(2).padStart(6)} ${`${resumed}/${tls} (${((100 * resumed) / Math.max(1, tls)).toFixed(0)}%)`.padStart(16)}` +
          (direct.failed + via.failed > 0 ? `  failures: direct ${direct.failed}, via ${via.failed}` : ''),
      );
    }
    lines.push(`resumed upstream handshakes seen by the destination: ${totalResumed}/${totalTls} (${((100 * totalResumed) / Math.max(1, totalTls)).toFixed(0)}%); Postfix issues one ticket per full handshake and none on resumption, so single use caps this near 50%`);
    lines.push(`ticketbooth peak RSS: ${tb.peakRssMiB().toFixed(0)} MiB (${idleMiB.toFixed(0)} MiB after start-up), ${SECONDS_PER_RUN} s per run, ${BODY.length} B messages`);
    figures.resumed_share = { value: Math.round((1000 * totalResumed) / Math.max(1, totalTls)) / 10, unit: `% of ${totalTls} upstream handshakes` };
    figures.peak_rss = { value: Math.round(tb.peakRssMiB()), unit: 'MiB' };
    return { name, lines, figures };
  } finally {
    await tb?.stop();
    await dest?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const section = await run();
  process.stdout.write(`${section.name}\n${section.lines.map((l) => `  ${l}`).join('\n')}\n`);
}
