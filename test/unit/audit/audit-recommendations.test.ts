import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { HandshakeEvent } from '../../../src/audit/events.js';
import { formatHtml } from '../../../src/audit/report/format-html.js';
import { formatText } from '../../../src/audit/report/format-text.js';
import type { AuditReport } from '../../../src/audit/report/report.js';
import { auditReport } from '../../../src/audit/report/run-report.js';
import { handshakeLine } from '../../support/audit-lines.js';

/** Recommendations per destination, from hand-written logs: when the figures support one, and when not. */

const dir = mkdtempSync(join(tmpdir(), 'tb-advice-'));
let n = 0;

const minute = (m: number): string => new Date(Date.UTC(2026, 10, 1, 10, m)).toISOString();

async function report(lines: string[]): Promise<AuditReport> {
  const path = join(dir, `log-${n++}.jsonl`);
  writeFileSync(path, lines.join('\n') + '\n');
  return auditReport({ files: [path], format: 'json' });
}

const advice = (r: AuditReport, destination = 'mx.a.test:25'): string[] =>
  r.destinations.find((d) => d.destination === destination)!.recommendations;

/** Postfix under `reuse: never`: one ticket per full handshake, none on resumption, so every other handshake is full. */
function postfixNever(over: Partial<HandshakeEvent> = {}, pairs = 10): string[] {
  const lines: string[] = [];
  for (let i = 0; i < pairs; i++) {
    lines.push(handshakeLine({ time: minute(2 * i), ticketsReceived: 1, ticketsLeft: 1, ...over }));
    lines.push(
      handshakeLine({
        time: minute(2 * i + 1),
        offered: 'tls13-ticket',
        offeredHash: (0xa000 + i).toString(16).padStart(12, '0'),
        resumed: true,
        fullCause: undefined,
        ticketsReceived: 0,
        ticketsLeft: 0,
        ...over,
      }),
    );
  }
  return lines;
}

describe('audit recommendations', () => {
  test('at its single-use ceiling without renewal: try adaptive reuse, in JSON, text and HTML', async () => {
    const r = await report(postfixNever());
    const d = r.destinations[0];
    assert.equal(d.resumedShare, 0.5);
    assert.equal(d.verdict.ceiling, 0.5);
    assert.deepEqual(advice(r), [
      'no renewal on resumption keeps it at its single-use ceiling: try `cache.reuse: adaptive` (adaptive reuse stops there after one refusal)',
    ]);
    assert.match(formatText(r), /\nRecommendations\n {2}mx\.a\.test:25: no renewal on resumption .*try `cache\.reuse: adaptive`/);
    assert.match(
      formatHtml(r),
      /<ul id="recommendations">\s*<li><b>mx\.a\.test:25<\/b>: no renewal on resumption .*<code>cache\.reuse: adaptive<\/code>/,
    );
  });

  test('no adaptive advice where it is on already, where the server refuses reused tickets, or where it renews', async () => {
    // Adaptive reuse already on there, and the server took the spent ticket.
    const on = await report([
      ...postfixNever(),
      handshakeLine({
        time: minute(30),
        offered: 'tls13-ticket',
        offeredHash: '00000000a000',
        reoffered: true,
        resumed: true,
        fullCause: undefined,
      }),
    ]);
    assert.deepEqual(advice(on), []);
    // Anti-replay: a ticket offered twice got a full handshake.
    const refuses = await report([
      ...postfixNever(),
      handshakeLine({ time: minute(30), offered: 'tls13-ticket', offeredHash: '00000000a000', fullCause: 'refused', ticketsReceived: 1 }),
    ]);
    assert.equal(refuses.destinations[0].verdict.reusedTickets, 'refused');
    assert.deepEqual(advice(refuses), []);
    const renews = await report(postfixNever({ ticketsReceived: 1 }));
    assert.equal(renews.destinations[0].verdict.renews, 'yes');
    assert.deepEqual(advice(renews), []);
  });

  test('a version-mixed balancer: version-mismatch full handshakes', async () => {
    const lines = [0, 1, 2, 3].flatMap((i) => [
      handshakeLine({
        time: minute(2 * i),
        protocol: 'TLSv1.2',
        offered: 'tls13-ticket',
        fullCause: 'version-mismatch',
        ticketsReceived: 1,
      }),
      handshakeLine({ time: minute(2 * i + 1), offered: 'tls12-session', fullCause: 'version-mismatch' }),
    ]);
    const r = await report(lines);
    assert.ok(r.destinations[0].verdict.phrases.includes('version-mixed (TLS 1.2 and 1.3)'));
    assert.deepEqual(advice(r), [
      "8 of 8 full handshakes offered the other TLS version's session: a balancer over TLS 1.2 and 1.3 nodes; one version on all of them makes those resumable",
    ]);
  });

  test('frequent refusals of fresh tickets; unreadable sessions', async () => {
    const refusals = [0, 1, 2].map((i) =>
      handshakeLine({ time: minute(20 + i), offered: 'tls13-ticket', offeredHash: `00000000b00${i}`, fullCause: 'refused' }),
    );
    const r = await report([
      ...postfixNever({}, 3),
      ...refusals,
      handshakeLine({ time: minute(30), destination: 'mx.u.test:25', ticketsUnreadable: 2 }),
    ]);
    assert.match(advice(r)[0], /^3 of 6 full handshakes were refused tickets: the server loses its ticket keys/);
    assert.equal(advice(r).length, 1, 'well below its ceiling: no adaptive advice');
    assert.match(advice(r, 'mx.u.test:25')[0], /^run ticketbooth on a Node\.js runtime whose sessions it can read/);
  });

  test('pooled destinations get none', async () => {
    const path = join(dir, 'pooled.jsonl');
    writeFileSync(path, [...postfixNever(), ...postfixNever({ destination: 'mx.b.test:25' })].join('\n') + '\n');
    const r = await auditReport({ files: [path], format: 'json', maxDestinations: 1 });
    assert.deepEqual(advice(r, '(other destinations)'), []);
    assert.equal(advice(r).length, 1);
  });
});
