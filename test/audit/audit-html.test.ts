import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import type { HandshakeEvent } from '../../src/audit/events.js';
import { auditReport, formatReport } from '../../src/audit/report/run-report.js';
import { handshakeLine } from '../support/audit-lines.js';
import { missing } from '../support/interop.js';

/**
 * The HTML report opened in Debian's headless Chromium: the charts exist, drew something, hold
 * the figures of the log, and the page logged no error and asked for nothing over the network.
 */

const dir = mkdtempSync(join(tmpdir(), 'tb-html-'));
const A = 'mx.a.test:25';
const EVIL = '<img src=x onerror=alert(1)>:25';

/** A line `tenths` tenths of a second into second `second` of the log. */
function at(second: number, tenths: number): string {
  return new Date(Date.UTC(2026, 10, 1, 10, 0, second, tenths * 100)).toISOString();
}

function hs(second: number, tenths: number, destination: string, over: Partial<HandshakeEvent>): string {
  return handshakeLine({
    time: at(second, tenths),
    destination,
    servername: destination.split(':')[0],
    ...over,
  });
}

// Ten seconds, so one-second buckets (a short log gets points, not one dot); each second A has one
// full handshake (3+m ms) and one resumed one (1 ms, leaving m%3 tickets), the other destination
// one full handshake of 5 ms.
const SECONDS = 10;
const lines: string[] = [];
for (let m = 0; m < SECONDS; m++) {
  lines.push(hs(m, 0, A, { handshakeMs: 3 + m, ticketsLeft: 2 }));
  lines.push(hs(m, 1, EVIL, { handshakeMs: 5, ticketsLeft: 0 }));
  lines.push(
    hs(m, 3, A, {
      offered: 'tls13-ticket',
      offeredHash: (0x1000 + m).toString(16).padStart(12, '0'),
      resumed: true,
      fullCause: undefined,
      ticketsReceived: 0,
      handshakeMs: 1,
      ticketsLeft: m % 3,
    }),
  );
}
// Failed attempts: a handshake to A whose certificate did not verify (before the second's other
// lines end, so no chart changes), two refused connects to the other, a greeting timeout elsewhere.
const DOWN = 'mx.down.test:25';
const upstreamError = (second: number, destination: string, stage: string, errorCode: string): string =>
  JSON.stringify({
    time: at(second, 4),
    event: 'upstream.error',
    listener: 'l',
    destination,
    stage,
    errorCode,
    error: errorCode,
    ms: 1,
  });
lines.push(
  hs(0, 2, A, {
    error: 'mx.a.test:25: Hostname/IP does not match',
    errorCode: 'ERR_TLS_CERT_ALTNAME_INVALID',
    protocol: undefined,
    fullCause: undefined,
    ticketsReceived: 0,
    ticketsLeft: 2,
  }),
);
lines.push(
  upstreamError(1, EVIL, 'connect', 'ECONNREFUSED'),
  upstreamError(2, EVIL, 'connect', 'ECONNREFUSED'),
  upstreamError(3, DOWN, 'greeting', 'ERR_SMTP_TIMEOUT'),
);

interface PageView {
  ids: string[];
  share: { label: string; data: (number | null)[] }[];
  time: { label: string; data: (number | null)[] }[];
  stock: { label: string; data: (number | null)[] }[];
  percentiles: { labels: string[]; data: (number | null)[][] };
  nonBlank: Record<string, boolean>;
  evilCell: boolean;
  upstreamRows: string[][];
}

describe('HTML report in headless Chromium', { skip: missing('chromium') }, () => {
  let browser: Browser;
  const errors: string[] = [];
  const requests: string[] = [];
  let view: PageView;
  let htmlFile: string;

  before(async () => {
    const log = join(dir, 'audit.jsonl');
    writeFileSync(log, lines.join('\n') + '\n');
    htmlFile = join(dir, 'report.html');
    writeFileSync(htmlFile, formatReport(await auditReport({ files: [log], format: 'html' }), 'html'));
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
    // tsx compiles this file with esbuild's keepNames: functions passed to evaluate() call __name.
    await page.addInitScript('window.__name = (f) => f');
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(htmlFile).href, { waitUntil: 'load' });
    await page.waitForFunction(() => (window as unknown as { ticketboothCharts?: unknown }).ticketboothCharts !== undefined, null, {
      timeout: 10_000,
    });
    view = await page.evaluate(() => {
      const w = window as unknown as {
        Chart: {
          getChart(
            c: HTMLCanvasElement,
          ): { data: { labels: string[]; datasets: { label: string; data: (number | null)[] }[] } } | undefined;
        };
      };
      const canvases = [...document.querySelectorAll('canvas')];
      const chartOf = (id: string) => w.Chart.getChart(document.getElementById(id) as HTMLCanvasElement)!;
      const sets = (id: string) => chartOf(id).data.datasets.map((d) => ({ label: d.label, data: [...d.data] }));
      const nonBlank: Record<string, boolean> = {};
      for (const c of canvases) {
        const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let painted = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) painted++;
        nonBlank[c.id] = painted > 500;
      }
      const pct = chartOf('chart-percentiles');
      return {
        ids: canvases.filter((c) => w.Chart.getChart(c) !== undefined).map((c) => c.id),
        share: sets('chart-share'),
        time: sets('chart-time'),
        stock: sets('chart-stock'),
        percentiles: { labels: [...pct.data.labels], data: pct.data.datasets.map((d) => [...d.data]) },
        nonBlank,
        evilCell: [...document.querySelectorAll('td')].some((td) => td.textContent === '<img src=x onerror=alert(1)>:25'),
        upstreamRows: [...document.querySelectorAll('#upstream-errors tr')].map((tr) => [...tr.children].map((c) => c.textContent ?? '')),
      };
    });
  });

  after(async () => {
    await browser?.close();
  });

  test('four charts rendered, each canvas painted, no console or page error, no request', () => {
    assert.deepEqual(view.ids, ['chart-share', 'chart-time', 'chart-stock', 'chart-percentiles']);
    assert.deepEqual(view.nonBlank, { 'chart-share': true, 'chart-time': true, 'chart-stock': true, 'chart-percentiles': true });
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, [pathToFileURL(htmlFile).href], 'the page itself and nothing else');
    assert.doesNotMatch(readFileSync(htmlFile, 'utf8'), /sourceMappingURL/);
  });

  test('resumption share per second: overall 1/3, A 1/2, the other 0', () => {
    assert.deepEqual(
      view.share.map((d) => d.label),
      ['all destinations', A, EVIL],
    );
    assert.deepEqual(view.share[0].data, Array(SECONDS).fill(33.3));
    assert.deepEqual(view.share[1].data, Array(SECONDS).fill(50));
    assert.deepEqual(view.share[2].data, Array(SECONDS).fill(0));
  });

  test('full vs resumed handshake time per second', () => {
    assert.deepEqual(
      view.time[0].data,
      Array.from({ length: SECONDS }, (_, m) => (3 + m + 5) / 2),
    );
    assert.deepEqual(view.time[1].data, Array(SECONDS).fill(1));
  });

  test('ticket stock: the latest figure of each second per destination', () => {
    assert.deepEqual(view.stock[0], { label: A, data: Array.from({ length: SECONDS }, (_, m) => m % 3) });
    assert.deepEqual(view.stock[1], { label: EVIL, data: Array(SECONDS).fill(0) });
  });

  test('p50/p95 bars per destination, and log text shown as text', () => {
    assert.deepEqual(view.percentiles.labels, [A, EVIL]);
    const [fullP50, , resumedP50] = view.percentiles.data;
    assert.equal(resumedP50[0], 1);
    assert.equal(fullP50[1], 5);
    assert.ok(Math.abs(fullP50[0]! - 7) / 7 < 0.045, `A's full p50 ${fullP50[0]} is about 7 ms`);
    assert.ok(view.evilCell, 'a destination name with markup is shown as text');
  });

  test('upstream errors per destination by cause, most first, names as text', () => {
    assert.deepEqual(view.upstreamRows, [
      ['destination', 'failed', 'connect', 'timeout', 'closed', 'certificate', 'tls', 'protocol', 'other', 'stages'],
      [EVIL, '2', '2', '0', '0', '0', '0', '0', '0', 'connect 2'],
      [A, '1', '0', '0', '0', '1', '0', '0', '0', 'tls 1'],
      [DOWN, '1', '0', '1', '0', '0', '0', '0', '0', 'greeting 1'],
    ]);
  });
});
