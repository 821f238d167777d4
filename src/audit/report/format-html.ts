import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DESTINATION_COLUMNS, pct, UPSTREAM_ERROR_COLUMNS, type Column, type View } from './columns.js';
import { formatText } from './format-text.js';
import { glossary, VERDICT_HELP } from './glossary.js';
import { messagesHeadline, widthText } from './headline.js';
import type { AuditReport, DestinationReport } from './report.js';

/**
 * One self-contained HTML file: the report's data as JSON, Chart.js inlined (read from
 * node_modules at report time), no request at view time. Charts: resumption share over time per
 * destination, full vs resumed handshake time, ticket stock per destination over time, and
 * p50/p95 per destination. The chart objects are on `window.ticketboothCharts` (for tests).
 */
export function formatHtml(r: AuditReport): string {
  const data = scriptSafeJson(r);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>ticketbooth audit: ${escapeHtml(r.overall.firstSeen ?? '')} – ${escapeHtml(r.overall.lastSeen ?? '')}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1.5em; }
.chart { position: relative; height: 320px; }
/* A table fits the page: headers and cells wrap, names from the log break anywhere; what still does not fit scrolls in its box. */
.table-box { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 6px; border-bottom: 1px solid #ddd; text-align: right; }
th { vertical-align: bottom; cursor: help; }
th:first-child, td:first-child, td.verdict { text-align: left; }
td:first-child { overflow-wrap: anywhere; min-width: 14em; max-width: 20em; }
#destinations th:last-child { text-align: left; }
td.verdict { min-width: 14em; }
details#glossary { margin: 0.5em 0 1em; max-width: 70em; }
#glossary dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 1em; }
#glossary dt { font-weight: 600; } #glossary dd { margin: 0; }
.refused { color: #b00; font-weight: 600; } .warn { color: #b00; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }
</style>
</head>
<body>
<h1>ticketbooth resumption audit</h1>
<p>${summary(r)}</p>
<div class="charts">
  <div><h2>Resumption share over time</h2><div class="chart"><canvas id="chart-share"></canvas></div></div>
  <div><h2>Handshake time, full vs resumed (mean per bucket)</h2><div class="chart"><canvas id="chart-time"></canvas></div></div>
  <div><h2>Ticket stock per destination</h2><div class="chart"><canvas id="chart-stock"></canvas></div></div>
  <div><h2>Handshake time p50 / p95 per destination</h2><div class="chart"><canvas id="chart-percentiles"></canvas></div></div>
</div>
<h2>Destinations</h2>
${glossaryHtml()}
${destinationTable(r.destinations)}
<h2>Recommendations</h2>
${recommendationList(r.destinations)}
<h2>Upstream errors by destination and cause</h2>
${upstreamErrorTable(r.upstreamErrors)}
<h2>Text report</h2>
<pre>${escapeHtml(formatText(r))}</pre>
<script>${chartJsSource()}</script>
<script id="report-data" type="application/json">${data}</script>
<script>${CHART_SCRIPT}</script>
</body>
</html>
`;
}

function summary(r: AuditReport): string {
  const o = r.overall;
  const share = pct(o.resumedShare, HTML.none);
  const bad = o.singleUseViolations.unattributed;
  const messages = messagesHeadline(o.smtp);
  const parts = [
    `${o.connections} TLS handshakes to ${o.destinations} destinations, ${share} resumed${messages ? `, ${messages}` : ''}`,
    `${o.singleUseViolations.total} single-use violations (${o.singleUseViolations.adaptive} by adaptive reuse, <span class="${bad ? 'warn' : ''}">${bad} unattributed</span>)`,
    `${r.upstreamErrors.total} failed upstream attempts`,
    `${r.input.malformed} malformed and ${r.input.truncated} truncated lines skipped`,
  ];
  if (r.series) parts.push(`time buckets of ${widthText(r.series.bucketSeconds)}`);
  return parts.join(' · ');
}

const HTML: View = { html: true, none: '–' };

function destinationTable(ds: DestinationReport[]): string {
  const verdict = (d: DestinationReport): string =>
    d.verdict.phrases.map((p) => (p === 'refuses reused tickets' ? `<span class="refused">${p}</span>` : escapeHtml(p))).join('; ');
  return table(DESTINATION_COLUMNS, ds, ' id="destinations"', {
    head: 'verdict',
    help: VERDICT_HELP,
    cell: (d) => `<td class="verdict">${verdict(d)}</td>`,
  });
}

/** One item per recommendation; its `setting` spans as code (the sentences are ours, the names from the log). */
function recommendationList(ds: DestinationReport[]): string {
  const items = ds.flatMap((d) =>
    d.recommendations.map((x) => `<li><b>${escapeHtml(d.destination)}</b>: ${escapeHtml(x).replace(/`([^`]+)`/g, '<code>$1</code>')}</li>`),
  );
  if (items.length === 0) return '<p id="recommendations">None: no destination\'s figures call for a change.</p>';
  return `<ul id="recommendations">\n${items.join('\n')}\n</ul>`;
}

/** One row per destination with failed attempts: a column per cause, then the stages they stopped at. */
function upstreamErrorTable(u: AuditReport['upstreamErrors']): string {
  if (u.destinations.length === 0) return '<p id="upstream-errors">No failed upstream attempts.</p>';
  return table(UPSTREAM_ERROR_COLUMNS, u.destinations, ' id="upstream-errors"');
}

/**
 * The columns with an HTML header, and optionally one more of markup (not escaped); each header
 * says what it means on hover. In a box of its own: a table wider than the page scrolls there.
 */
function table<R>(
  columns: readonly Column<R>[],
  data: readonly R[],
  attributes: string,
  extra?: { head: string; help: string; cell: (row: R) => string },
): string {
  const shown = columns.filter((c) => c.html !== undefined);
  const head = [...shown.map((c) => ({ h: c.html ?? '', help: c.help })), ...(extra ? [{ h: extra.head, help: extra.help }] : [])];
  const th = ({ h, help }: { h: string; help: string }): string => `<th title="${escapeHtml(help)}">${h.replace(/\//g, '/<wbr>')}</th>`;
  const rows = data.map((d) => `<tr>${shown.map((c) => `<td>${escapeHtml(c.cell(d, HTML))}</td>`).join('')}${extra?.cell(d) ?? ''}</tr>`);
  return `<div class="table-box"><table${attributes}><thead><tr>${head.map(th).join('')}</tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table></div>`;
}

/** Every header and term of the page, closed until asked for (the headers' titles say the same). */
function glossaryHtml(): string {
  const entries = glossary().map(
    (e) =>
      `<dt data-term="${escapeHtml(e.term)}">${escapeHtml(e.term)}${e.textName ? ` <code>${escapeHtml(e.textName)}</code>` : ''}</dt><dd>${escapeHtml(e.help)}</dd>`,
  );
  return `<details id="glossary"><summary>What the columns and terms mean (text report names in <code>CAPS</code>)</summary><dl>\n${entries.join('\n')}\n</dl></details>`;
}

let chartJs: string | undefined;

/** Chart.js's UMD build, read once per process; its source-map comment is dropped (no request at view time). */
function chartJsSource(): string {
  if (chartJs === undefined) {
    const main = createRequire(import.meta.url).resolve('chart.js');
    chartJs = readFileSync(join(dirname(main), 'chart.umd.min.js'), 'utf8').replace(/\/\/# sourceMappingURL=\S+\s*$/, '');
  }
  return chartJs;
}

/** JSON inside a script element: nothing in it (destination names come from the log) may close the element. */
function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Runs in the page: builds the charts from the embedded report. */
const CHART_SCRIPT = String.raw`
(function () {
  'use strict';
  var report = JSON.parse(document.getElementById('report-data').textContent);
  window.ticketboothReport = report;
  // One meaning per color on every chart: red is a full handshake, green a resumed one, black all
  // destinations; a destination gets one of the rest (no red or green), by its place in the series.
  var FULL = '#d62728', FULL_LIGHT = '#f4a3a3', RESUMED = '#2ca02c', RESUMED_LIGHT = '#a6dba0';
  var palette = ['#1f77b4', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#393b79'];
  function color(i) { return palette[i % palette.length]; }
  var series = report.series || { starts: [], overall: { resumedShare: [], fullMsMean: [], resumedMsMean: [] }, destinations: [] };
  var labels = series.starts.map(function (s) { return s.slice(0, 16).replace('T', ' '); });
  var base = { animation: false, responsive: true, maintainAspectRatio: false, spanGaps: true,
    elements: { point: { radius: labels.length > 30 ? 0 : 2 } },
    interaction: { mode: 'index', intersect: false }, plugins: { legend: { position: 'bottom' } } };
  var x = { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } };
  function opts(extra) {
    var o = Object.assign({}, base, extra);
    if (o.scales && !o.noTimeAxis) o.scales = Object.assign({ x: x }, o.scales);
    delete o.noTimeAxis;
    return o;
  }
  function pct(v) { return v === null ? null : Math.round(v * 1000) / 10; }
  var charts = {};

  charts.share = new Chart(document.getElementById('chart-share'), {
    type: 'line',
    data: { labels: labels, datasets: [{ label: 'all destinations', data: series.overall.resumedShare.map(pct), borderColor: '#000', backgroundColor: '#000', borderWidth: 3 }]
      .concat(series.destinations.map(function (d, i) {
        return { label: d.destination, data: d.values.resumedShare.map(pct), borderColor: color(i), backgroundColor: color(i), borderWidth: 1.5 };
      })) },
    options: opts({ scales: { y: { min: 0, max: 100, title: { display: true, text: '% resumed' } } } })
  });

  charts.time = new Chart(document.getElementById('chart-time'), {
    type: 'line',
    data: { labels: labels, datasets: [
      { label: 'full handshake', data: series.overall.fullMsMean, borderColor: FULL, backgroundColor: FULL },
      { label: 'resumed handshake', data: series.overall.resumedMsMean, borderColor: RESUMED, backgroundColor: RESUMED }
    ] },
    options: opts({ scales: { y: { beginAtZero: true, title: { display: true, text: 'ms' } } } })
  });

  charts.stock = new Chart(document.getElementById('chart-stock'), {
    type: 'line',
    data: { labels: labels, datasets: series.destinations.map(function (d, i) {
      return { label: d.destination, data: d.values.ticketsLeft, borderColor: color(i), backgroundColor: color(i), stepped: true };
    }) },
    options: opts({ scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: 'tickets held' } } } })
  });

  var top = report.destinations.slice(0, 8);
  function ms(pick) { return top.map(pick); }
  charts.percentiles = new Chart(document.getElementById('chart-percentiles'), {
    type: 'bar',
    data: { labels: top.map(function (d) { return d.destination; }), datasets: [
      { label: 'full p50', data: ms(function (d) { return d.handshakeMs.full.p50; }), backgroundColor: FULL },
      { label: 'full p95', data: ms(function (d) { return d.handshakeMs.full.p95; }), backgroundColor: FULL_LIGHT },
      { label: 'resumed p50', data: ms(function (d) { return d.handshakeMs.resumed.p50; }), backgroundColor: RESUMED },
      { label: 'resumed p95', data: ms(function (d) { return d.handshakeMs.resumed.p95; }), backgroundColor: RESUMED_LIGHT }
    ] },
    options: opts({ noTimeAxis: true, scales: { y: { beginAtZero: true, title: { display: true, text: 'ms' } } } })
  });

  window.ticketboothCharts = charts;
})();
`;
