import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { HandshakeEvent } from '../../src/audit/events.js';
import { auditReport } from '../../src/audit/report/run-report.js';
import type { AuditReport, DestinationReport } from '../../src/audit/report/report.js';
import { startGate, type Gate } from '../support/audit-servers.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startNodeTlsServer, startSServer, verdictPlain, type NodeTlsServer, type SServer, type Verdict } from '../support/servers.js';
import { isHandshake, startTunnelService, type TunnelHarness } from '../support/tunnel-service.js';

/**
 * The report's figures and verdicts against audit logs of real runs: ticketbooth's Service with
 * a tunnel listener in front of servers whose ticket behaviour is known (resumption-facts.md).
 * Expected figures come from what the servers told the clients (`New` / `Reused` pages), not
 * from the log the report reads.
 */

const exec = promisify(execFile);

interface Run {
  harness: TunnelHarness;
  verdicts: Verdict[];
}

/** One client GET through the tunnel, then wait for its audit line (tickets stored by then). */
async function get(run: Run): Promise<void> {
  run.verdicts.push(await verdictPlain(run.harness.port));
  await run.harness.waitFor(isHandshake, run.verdicts.length);
}

function destinationOf(report: AuditReport, port: number): DestinationReport {
  const d = report.destinations.find((x) => x.destination === `127.0.0.1:${port}`);
  assert.ok(d, `no destination 127.0.0.1:${port} in ${report.destinations.map((x) => x.destination).join(', ')}`);
  return d;
}

function reused(run: Run): number {
  return run.verdicts.filter((v) => v.verdict === 'Reused').length;
}

describe('audit report over real runs', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  let renewing: SServer;
  let antiReplay: SServer;
  let nodeServer: NodeTlsServer;
  let gate: Gate;
  const runs: Record<'renewing' | 'node' | 'antiReplay', Run> = {} as never;
  let report: AuditReport;

  before(async () => {
    cert = makeCert(['localhost']);
    renewing = await startSServer('tls13', cert);
    antiReplay = await startSServer('tls13-anti-replay', cert);
    nodeServer = await startNodeTlsServer({ cert, minVersion: 'TLSv1.3' });
    gate = await startGate(antiReplay);
    const upstream = (port: number): { host: string; port: number; servername: string; ca: string } => ({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: cert.certFile,
    });
    runs.renewing = { harness: await startTunnelService({ upstream: upstream(renewing.port), name: 'renewing' }), verdicts: [] };
    runs.node = { harness: await startTunnelService({ upstream: upstream(nodeServer.port), name: 'node' }), verdicts: [] };
    runs.antiReplay = {
      harness: await startTunnelService({ upstream: upstream(gate.port), name: 'anti-replay', cache: { reuse: 'adaptive' } }),
      verdicts: [],
    };

    for (let i = 0; i < 6; i++) await get(runs.renewing);
    for (let i = 0; i < 6; i++) await get(runs.node);

    // Anti-replay under adaptive: one full handshake (2 tickets), then a burst of three that all
    // take their offers before any handshake is done: two fresh tickets, then the newest spent one
    // offered again, which the server refuses. Then two more one at a time.
    const a = runs.antiReplay;
    await get(a);
    gate.hold();
    const burst = [0, 1, 2].map(() => verdictPlain(a.harness.port));
    await gate.waitHeld(3);
    await gate.open();
    a.verdicts.push(...(await Promise.all(burst)));
    await a.harness.waitFor(isHandshake, a.verdicts.length);
    for (let i = 0; i < 2; i++) await get(a);

    for (const r of Object.values(runs)) await r.harness.stop();
    report = await auditReport({ files: Object.values(runs).map((r) => r.harness.auditFile), format: 'json' });
  });

  after(async () => {
    for (const r of Object.values(runs)) await r.harness?.stop().catch(() => undefined);
    await Promise.all([renewing?.stop(), antiReplay?.stop(), nodeServer?.stop(), gate?.stop()]);
  });

  test('counts match what the servers saw, per destination and overall', () => {
    const all = Object.values(runs);
    assert.equal(report.input.malformed + report.input.truncated, 0);
    assert.equal(
      report.overall.connections,
      all.reduce((n, r) => n + r.verdicts.length, 0),
    );
    assert.equal(
      report.overall.resumed,
      all.reduce((n, r) => n + reused(r), 0),
    );
    for (const [run, port] of [
      [runs.renewing, renewing.port],
      [runs.node, nodeServer.port],
      [runs.antiReplay, gate.port],
    ] as const) {
      const d = destinationOf(report, port);
      assert.equal(d.connections, run.verdicts.length);
      assert.equal(d.resumed, reused(run));
      assert.equal(d.full, run.verdicts.length - reused(run));
      assert.equal(d.failed, 0);
      assert.deepEqual(d.versions, { 'TLSv1.3': run.verdicts.length });
      const log = run.harness.handshakes();
      assert.equal(d.fullByCause['nothing-offered'], log.filter((e) => !e.resumed && e.offered === 'none').length);
      assert.equal(d.handshakeMs.full.n, d.full);
      assert.equal(d.handshakeMs.resumed.n, d.resumed);
      assert.ok(d.handshakeMs.full.p50! <= d.handshakeMs.full.p95!);
    }
  });

  test('openssl s_server -tls1_3: renews on resumption, k=2, ceiling ~1', () => {
    const d = destinationOf(report, renewing.port);
    assert.equal(reused(runs.renewing), runs.renewing.verdicts.length - 1, 'every connection after the first resumed');
    assert.equal(d.verdict.ticketsPerFull, 2);
    assert.equal(d.verdict.renews, 'yes');
    assert.equal(d.verdict.ceiling, 1);
    assert.equal(d.ticketsPerResumed, 1);
    assert.deepEqual(d.singleUseViolations, { total: 0, adaptive: 0, unattributed: 0 });
  });

  test('Node TLS server: k=2, no renewal, ceiling 2/3, every ticket used once', () => {
    const d = destinationOf(report, nodeServer.port);
    assert.equal(d.verdict.ticketsPerFull, 2);
    assert.equal(d.verdict.renews, 'no');
    assert.equal(d.verdict.ticketsPerResumed, 0);
    assert.equal(d.verdict.ceiling, 2 / 3);
    assert.equal(d.verdict.reusedTickets, 'untested');
    assert.equal(d.resumedShare, Math.round((reused(runs.node) / runs.node.verdicts.length) * 1e4) / 1e4);
    assert.equal(reused(runs.node), 4, 'six connections: full, 2 resumed, full, 2 resumed');
    assert.deepEqual(d.singleUseViolations, { total: 0, adaptive: 0, unattributed: 0 });
  });

  test('s_server -max_early_data under adaptive: refuses reused tickets, repeats attributed to adaptive', () => {
    const d = destinationOf(report, gate.port);
    const log: HandshakeEvent[] = runs.antiReplay.harness.handshakes();
    const reoffered = log.filter((e) => e.reoffered);
    assert.ok(reoffered.length >= 1, 'the burst made ticketbooth offer a spent ticket again');
    assert.ok(
      runs.antiReplay.verdicts.some((v, i) => i > 0 && v.verdict === 'New'),
      'the server refused one',
    );
    assert.equal(d.verdict.reusedTickets, 'refused');
    assert.ok(d.verdict.phrases.includes('refuses reused tickets'));
    assert.equal(d.singleUseViolations.adaptive, reoffered.length);
    assert.equal(d.singleUseViolations.unattributed, 0);
    assert.equal(d.adaptiveReuse.refused, reoffered.filter((e) => !e.resumed).length);
    assert.equal(d.fullByCause.refused, log.filter((e) => e.fullCause === 'refused').length);
    assert.ok(d.fullByCause.refused >= 1);
    assert.equal(report.overall.singleUseViolations.unattributed, 0);
  });

  test('the CLI prints the same verdicts, and --dest keeps one destination', async () => {
    const files = Object.values(runs).map((r) => r.harness.auditFile);
    const { stdout } = await exec(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'audit', ...files]);
    assert.match(stdout, new RegExp(`127\\.0\\.0\\.1:${renewing.port}: k=2 tickets per full handshake; renews on resumption`));
    assert.match(
      stdout,
      new RegExp(`127\\.0\\.0\\.1:${nodeServer.port}: k=2 tickets per full handshake; no renewal on resumption; ceiling 66\\.7%`),
    );
    assert.match(stdout, new RegExp(`127\\.0\\.0\\.1:${gate.port}: .*refuses reused tickets`));
    const one = await exec(process.execPath, [
      '--import',
      'tsx',
      'src/cli.ts',
      'audit',
      '--format',
      'json',
      '--dest',
      `127.0.0.1:${nodeServer.port}`,
      ...files,
    ]);
    const r = JSON.parse(one.stdout) as AuditReport;
    assert.deepEqual(
      r.destinations.map((x) => x.destination),
      [`127.0.0.1:${nodeServer.port}`],
    );
    assert.equal(r.overall.connections, runs.node.verdicts.length);
  });
});
