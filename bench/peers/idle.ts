/**
 * Idle resident memory: `ticketbooth serve --config config/default.yaml` (as `npm start` runs it:
 * the bundle in dist/ with its shebang's flags) once it reports every listener and the admin endpoint,
 * beside stunnel with one client service once it accepts connections. VmRSS of each process, read
 * SETTLE_MS after both are up (issue 27 reads `serve` 3 s after it listens), and how much of
 * ticketbooth's is file-backed: the node binary's code pages touched so far, not anonymous memory.
 * If a port of the default config is taken on this machine, a copy with port 0 is used instead.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { makeCert } from '../../test/support/certs.js';
import { missing } from '../../test/support/interop.js';
import { startProcess } from '../../test/support/process.js';
import type { Figure, Section } from '../section.js';
import { table } from '../section.js';
import { CLI, ensureBuilt, NODE_FLAGS, ROOT } from './build.js';
import { startStunnel } from './contenders.js';
import { readRss } from '../../test/support/proc-memory.js';
import { fixed, goalFigure, plainFigure } from './figures.js';

const RSS_GOAL = { atMost: 70 };
const SETTLE_MS = 3000;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port }, () => s.close(() => resolve(true)));
  });
}

export async function run(): Promise<Section> {
  const name = 'Peers, idle memory: ticketbooth with config/default.yaml vs stunnel with one service (VmRSS)';
  const skip = missing('stunnel4', 'openssl');
  if (skip) return { name, lines: [`skipped: ${skip}`] };
  const built = await ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'tb-bench-peers-idle-'));
  const running: { stop(): Promise<void> }[] = [];
  try {
    let config = join(ROOT, 'config', 'default.yaml');
    const text = readFileSync(config, 'utf8');
    const ports = [...text.matchAll(/^\s*listen: 127\.0\.0\.1:(\d+)/gm)].map((m) => Number(m[1]));
    const taken = [];
    for (const p of ports) if (!(await portFree(p))) taken.push(p);
    if (taken.length > 0) {
      config = join(dir, 'default.yaml');
      writeFileSync(config, text.replace(/^(\s*listen: 127\.0\.0\.1:)\d+/gm, '$10'));
    }
    const tb = await startProcess(process.execPath, [...NODE_FLAGS, CLI, 'serve', '--config', config], {
      ready: /admin \([^)]*\) listening on/,
      timeoutMs: 20_000,
      cwd: ROOT,
    });
    running.push({ stop: () => tb.stop() });
    const cert = makeCert(['localhost'], dir);
    const st = await startStunnel({ host: '127.0.0.1', port: 9, servername: 'localhost', cert });
    running.push(st);
    await sleep(SETTLE_MS);
    const tbMiB = readRss(tb.child.pid ?? NaN).rss;
    const tbFileMiB = rssFileMiB(tb.child.pid ?? NaN);
    const stMiB = readRss(st.pid).rss;
    const figures: Record<string, Figure> = {
      ticketbooth_idle_rss: goalFigure(tbMiB, 'MiB', RSS_GOAL),
      ticketbooth_idle_rss_file_backed: plainFigure(tbFileMiB, 'MiB'),
      stunnel_idle_rss: plainFigure(stMiB, 'MiB'),
    };
    return {
      name,
      lines: [
        ...table(
          ['process', 'VmRSS MiB', 'goal'],
          [
            [
              'ticketbooth serve (default config)',
              fixed(tbMiB, 1),
              `<= ${RSS_GOAL.atMost} MiB${figures.ticketbooth_idle_rss.met ? '' : ' !'}`,
            ],
            ['stunnel, one service', fixed(stMiB, 1), ''],
          ],
        ),
        `ticketbooth/stunnel: ${(tbMiB / stMiB).toFixed(1)}x. Of ticketbooth's, file-backed (code pages of the node binary): ${fixed(tbFileMiB, 1)} MiB. ${taken.length > 0 ? `Ports ${taken.join(', ')} were taken: ran a copy of the default config with port 0. ` : ''}${built}.`,
      ],
      figures,
    };
  } finally {
    for (const r of running.reverse()) await r.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

function rssFileMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^RssFile:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024;
}
