import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TLSSocket } from 'node:tls';
import type { AuditEvent, HandshakeEvent } from '../../src/audit/events.js';
import { auditReport } from '../../src/audit/report/run-report.js';
import { parseConfig } from '../../src/config/load.js';
import { Service } from '../../src/service/service.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startNodeTlsServer, verdictPlain, type NodeTlsServer } from '../support/servers.js';

/**
 * A runtime whose sessions ticketbooth cannot read (as Node 22's envelope was for ticketbooth on
 * Node 20's reader): resumption stops, and that must never be silent. The client sockets' 'session'
 * buffers are rewritten into an envelope version that does not exist yet; a real TLS server issues
 * them. The metric, the audit line, the report and stderr must all say so.
 */

describe('sessions that cannot be read are counted, audited, reported and said', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  let server: NodeTlsServer;
  let service: Service;
  let auditFile: string;
  const events: AuditEvent[] = [];
  const stderr: string[] = [];
  // Saved to be put back: these are called with their own `this` below.
  const realEmit = TLSSocket.prototype.emit;
  const realWrite = process.stderr.write;

  before(async () => {
    cert = makeCert(['localhost']);
    server = await startNodeTlsServer({ cert, minVersion: 'TLSv1.3' });
    auditFile = join(mkdtempSync(join(tmpdir(), 'tb-unreadable-')), 'audit.jsonl');
    const config = parseConfig(
      JSON.stringify({
        listeners: [
          {
            name: 'future',
            type: 'tunnel',
            listen: '127.0.0.1:0',
            upstream: { host: '127.0.0.1', port: server.port, servername: 'localhost', ca: cert.certFile },
          },
        ],
        admin: { listen: '127.0.0.1:0' },
        audit: { file: auditFile },
        shutdownTimeoutSeconds: 2,
      }),
    );
    TLSSocket.prototype.emit = function (this: TLSSocket, name: string | symbol, ...args: unknown[]): boolean {
      if (name === 'session' && Buffer.isBuffer(args[0])) {
        // A future envelope version around the DER (Node 20 hands out bare DER: wrap that too).
        const b = args[0][0] === 0 ? Buffer.from(args[0]) : Buffer.concat([Buffer.from('\0nodejs:tls:session:1\0\0\0', 'latin1'), args[0]]);
        b.write('2', '\0nodejs:tls:session:'.length, 'latin1');
        args[0] = b;
      }
      return (realEmit as (this: TLSSocket, n: string | symbol, ...a: unknown[]) => boolean).call(this, name, ...args);
    } as typeof realEmit;
    process.stderr.write = (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      stderr.push(String(chunk));
      return (realWrite as (c: string | Uint8Array, ...r: unknown[]) => boolean).call(process.stderr, chunk, ...rest);
    };
    service = await Service.start(config);
    service.audit.on('event', (e) => events.push(e));
  });

  after(async () => {
    TLSSocket.prototype.emit = realEmit;
    process.stderr.write = realWrite;
    await service?.stop(1000);
    await server?.stop();
  });

  test('three connections: nothing resumes, and every figure says why', async () => {
    const port = service.addressOf('future').port;
    for (let i = 0; i < 3; i++) assert.equal((await verdictPlain(port)).verdict, 'New', 'the server saw a full handshake');
    await server.closedAtLeast(3);
    const handshakes = (): HandshakeEvent[] => events.filter((e): e is HandshakeEvent => e.event === 'tls.handshake');
    while (handshakes().length < 3) await new Promise((r) => service.audit.once('event', r));
    // Node's TLS 1.3 server sends 2 tickets per full handshake: 6 sessions, none readable, none kept.
    const unreadable = handshakes().reduce((n, e) => n + (e.ticketsUnreadable ?? 0), 0);
    assert.equal(unreadable, 6);
    assert.ok(handshakes().every((e) => e.ticketsReceived === 0 && e.offered === 'none'));

    const metrics = await (await fetch(`http://127.0.0.1:${service.admin!.address().port}/metrics`)).text();
    assert.match(metrics, /^ticketbooth_sessions_unreadable_total\{listener="future"\} 6$/m);

    const warnings = stderr.filter((l) => l.includes('cannot read a TLS session'));
    assert.equal(warnings.length, 1, 'once per process and reason');
    assert.match(warnings[0], /unknown-envelope/);
    assert.ok(warnings[0].includes(process.version) && warnings[0].includes(process.versions.openssl), 'names the runtime');

    await service.audit.close();
    const report = await auditReport({ files: [auditFile], format: 'json' });
    const d = report.destinations.find((x) => x.destination === `127.0.0.1:${server.port}`);
    assert.equal(d?.ticketsUnreadable, 6);
    assert.ok(d?.verdict.phrases.some((p) => p.startsWith('6 sessions unreadable')));
    assert.equal(report.overall.ticketsUnreadable, 6);
  });
});
