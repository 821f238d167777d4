import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
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
 * The HTML report of a relay with many destinations and long names, at 1280x2000 in headless
 * Chromium: the page does not scroll sideways and every column of every table can be seen, every
 * header is explained (title and glossary), and a color means one thing on every chart.
 */

const dir = mkdtempSync(join(tmpdir(), 'tb-html-layout-'));
const DESTINATIONS = 30;
const name = (i: number): string => `mx${i}-backup-relay.eu-west-${i}.very-long-subdomain-of-a-hosting-provider.example.test:465`;

const lines: string[] = [];
for (let i = 0; i < DESTINATIONS; i++) {
  const at = (m: number, over: Partial<HandshakeEvent>): string =>
    handshakeLine({ time: new Date(Date.UTC(2026, 10, 1, 10, m, i)).toISOString(), destination: name(i), servername: name(i), ...over });
  for (let m = 0; m < 6; m++) {
    lines.push(at(m, { handshakeMs: 3 + i, ticketsReceived: 1, ticketsLeft: 1, protocol: m % 3 ? 'TLSv1.3' : 'TLSv1.2' }));
    lines.push(
      at(m, {
        offered: 'tls13-ticket',
        offeredHash: (0x10000 * (i + 1) + m).toString(16).padStart(12, '0'),
        resumed: m % 2 === 0,
        fullCause: m % 2 === 0 ? undefined : 'refused',
        ticketsReceived: 0,
        ticketsLeft: 0,
        handshakeMs: 1,
      }),
    );
  }
  lines.push(
    JSON.stringify({
      time: new Date(Date.UTC(2026, 10, 1, 10, 7, i)).toISOString(),
      event: 'upstream.error',
      listener: 'l',
      destination: name(i),
      stage: 'greeting',
      errorCode: 'ERR_SMTP_TIMEOUT',
      error: 'ERR_SMTP_TIMEOUT',
      ms: 1,
    }),
  );
}

interface Layout {
  innerWidth: number;
  scrollWidth: number;
  tables: { id: string; lastHeadRight: number; limit: number; scrolls: boolean; hidden: string[] }[];
  heads: { text: string; title: string }[];
  glossary: Record<string, string>;
  colors: { full: string; resumed: string; fullBar: string; resumedBar: string; destinations: string[] };
}

describe('HTML report layout, glossary and colors in headless Chromium', { skip: missing('chromium') }, () => {
  let browser: Browser;
  let view: Layout;

  before(async () => {
    const log = join(dir, 'audit.jsonl');
    writeFileSync(log, lines.join('\n') + '\n');
    const htmlFile = join(dir, 'report.html');
    writeFileSync(htmlFile, formatReport(await auditReport({ files: [log], format: 'html' }), 'html'));
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 2000 } });
    // tsx compiles this file with esbuild's keepNames: functions passed to evaluate() call __name.
    await page.addInitScript('window.__name = (f) => f');
    await page.goto(pathToFileURL(htmlFile).href, { waitUntil: 'load' });
    await page.waitForFunction(() => (window as unknown as { ticketboothCharts?: unknown }).ticketboothCharts !== undefined, null, {
      timeout: 10_000,
    });
    view = await page.evaluate(() => {
      type Set = { label: string; borderColor?: string; backgroundColor?: string };
      const charts = (window as unknown as { ticketboothCharts: Record<string, { data: { datasets: Set[] } }> }).ticketboothCharts;
      const sets = (id: string): Set[] => charts[id].data.datasets;
      const colorOf = (id: string, label: string): string => {
        const d = sets(id).find((s) => s.label === label)!;
        return d.borderColor ?? d.backgroundColor ?? '';
      };
      const tables = [...document.querySelectorAll('table')].map((t) => {
        const box = t.parentElement!;
        const heads = [...t.querySelectorAll('thead th')];
        const scrolls = box.scrollWidth > box.clientWidth;
        const boxLeft = box.getBoundingClientRect().left;
        const last = heads.at(-1)!.getBoundingClientRect();
        return {
          id: t.id,
          // In a scrolling box a column is reached by scrolling it, not the page.
          lastHeadRight: scrolls ? last.right - boxLeft + box.scrollLeft : last.right,
          limit: scrolls ? box.scrollWidth : window.innerWidth,
          scrolls,
          hidden: heads.filter((h) => h.getBoundingClientRect().width < 10).map((h) => h.textContent ?? ''),
        };
      });
      const glossary: Record<string, string> = {};
      for (const dt of document.querySelectorAll('#glossary dt')) {
        glossary[(dt as HTMLElement).dataset.term ?? ''] = dt.nextElementSibling?.textContent ?? '';
      }
      return {
        innerWidth: window.innerWidth,
        scrollWidth: document.documentElement.scrollWidth,
        tables,
        heads: [...document.querySelectorAll('table thead th')].map((h) => ({
          text: h.textContent ?? '',
          title: h.getAttribute('title') ?? '',
        })),
        glossary,
        colors: {
          full: colorOf('time', 'full handshake'),
          resumed: colorOf('time', 'resumed handshake'),
          fullBar: colorOf('percentiles', 'full p50'),
          resumedBar: colorOf('percentiles', 'resumed p50'),
          destinations: [...sets('share'), ...sets('stock')]
            .filter((s) => s.label !== 'all destinations')
            .flatMap((s) => [s.borderColor ?? '', s.backgroundColor ?? '']),
        },
      };
    });
  });

  after(async () => {
    await browser?.close();
  });

  test('no horizontal scroll of the page; every column of every table within the viewport or its own scroll box', () => {
    assert.ok(view.scrollWidth <= view.innerWidth, `page ${view.scrollWidth} px wide in a ${view.innerWidth} px window`);
    assert.deepEqual(
      view.tables.map((t) => t.id),
      ['destinations', 'upstream-errors'],
    );
    for (const t of view.tables) {
      assert.ok(t.lastHeadRight <= t.limit, `${t.id}: last header ends at ${t.lastHeadRight}, beyond ${t.limit}`);
      assert.deepEqual(t.hidden, [], `${t.id}: no column squeezed out`);
    }
  });

  test('a glossary defines every column header, and each header has a title', () => {
    assert.ok(view.heads.length > 20);
    for (const h of view.heads) {
      assert.ok(h.title.length > 10, `"${h.text}" has a title`);
      assert.ok((view.glossary[h.text] ?? '').length > 10, `"${h.text}" is in the glossary`);
    }
    for (const term of ['ceiling', '~1', 'K', 'RENEWS', 'REUSED', 'repeats adaptive/other', 'p50/p95', 'colors'])
      assert.ok((view.glossary[term] ?? '').length > 10, `"${term}" is in the glossary`);
    assert.match(view.glossary.ceiling, /k\/\(k\+1\)/);
  });

  test('one meaning per color: full handshake red, resumed green, on every chart; no destination drawn in either', () => {
    assert.equal(view.colors.fullBar, view.colors.full);
    assert.equal(view.colors.resumedBar, view.colors.resumed);
    assert.notEqual(view.colors.full, view.colors.resumed);
    assert.ok(view.colors.destinations.length >= 16, 'the 8 busiest in two charts');
    assert.ok(!view.colors.destinations.includes(view.colors.full), 'the full-handshake color is no destination color');
    assert.ok(!view.colors.destinations.includes(view.colors.resumed), 'the resumed color is no destination color');
  });
});
