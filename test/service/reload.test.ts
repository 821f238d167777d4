import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { AuditLog } from '../../src/audit/audit-log.js';
import { parseConfig } from '../../src/config/load.js';
import { Service } from '../../src/service/service.js';
import { makeCert } from '../support/certs.js';
import { startNodeTlsServer } from '../support/node-tls-server.js';
import { startProcess, type RunningProcess } from '../support/process.js';
import { until } from '../support/until.js';
import { dial, message, sendMessage, type SmtpDialogue } from '../support/smtp-client.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';

const run = promisify(execFile);
const CLIENTS = 20;

/** A smarthost relaying to `port` (cleartext next hop: this is about the config, not TLS), plus extra listener YAML. */
function config(port: number, extra = '', ca = ''): string {
  return `
listeners:
  - name: relay
    type: smtp
    listen: 127.0.0.1:0
    hostname: tb.test
    route: { mode: relay, host: 127.0.0.1, port: ${port}, tls: { level: none${ca} } }
${extra}
`;
}

const SECOND_LISTENER = `
  - name: added
    type: smtp
    listen: 127.0.0.1:0
    hostname: tb2.test
    route: { mode: relay, host: 127.0.0.1, port: PORT, tls: { level: none } }
`;

/** Which next hop stored the message with this id, if any. */
function storedAt(id: string, ...servers: FaultServer[]): string[] {
  return servers.filter((s) => s.stored.some((m) => m.body.includes(`<${id}@client.test>`))).map((s) => s.host + ':' + s.port);
}

describe('reload: a new config under load, without dropping a session', () => {
  let a: FaultServer;
  let b: FaultServer;
  let service: Service;

  before(async () => {
    a = await startFaultServer({ name: 'a.test' });
    b = await startFaultServer({ name: 'b.test' });
    service = await Service.start(parseConfig(config(a.port)), new AuditLog());
  });
  after(async () => {
    await service?.stop(2000);
    await a?.stop();
    await b?.stop();
  });

  test('20 steady clients: 0 failures; open sessions finish on the old route, new ones take the new route; an added listener serves', async () => {
    const port = service.addressOf('relay').port;
    let reloaded = false;
    let stop = false;
    const failures: string[] = [];
    const sent: Array<{ id: string; afterReload: boolean; openedBefore: boolean }> = [];
    // Sessions opened before the reload that send again after it: they must still reach a.
    const heldOpen: SmtpDialogue[] = [];
    for (let i = 0; i < 5; i++) {
      const d = await dial(port);
      await d.cmd('EHLO held.test');
      heldOpen.push(d);
    }
    const client = async (n: number): Promise<void> => {
      for (let round = 0; !stop; round++) {
        const id = `steady-${n}-${round}`;
        const openedAfter = reloaded;
        try {
          const d = await dial(port);
          await d.cmd('EHLO steady.test');
          const r = await sendMessage(d, 'a@client.test', ['u@dest.test'], message(id));
          await d.cmd('QUIT');
          d.close();
          if (r.final.code !== 250) failures.push(`${id}: ${r.final.raw}`);
          else sent.push({ id, afterReload: openedAfter, openedBefore: !openedAfter });
        } catch (err) {
          failures.push(`${id}: ${(err as Error).message}`);
        }
      }
    };
    const load = Array.from({ length: CLIENTS }, (_, n) => client(n));
    // Let every client get a few messages through on the old config first.
    while (sent.length < CLIENTS * 2) await new Promise((r) => setImmediate(r));

    const summary = await service.reload(parseConfig(config(b.port, SECOND_LISTENER.replace('PORT', String(b.port)))));
    reloaded = true;
    assert.deepEqual([summary.replaced, summary.added, summary.removed], [['relay'], ['added'], []]);
    assert.equal(service.addressOf('relay').port, port, 'the same bound socket serves on');
    const afterCount = sent.length;
    while (sent.filter((s) => s.afterReload).length < CLIENTS * 2) await new Promise((r) => setImmediate(r));

    // The sessions held open across the reload: their next message still goes to a.
    for (const [i, d] of heldOpen.entries()) {
      const r = await sendMessage(d, 'a@client.test', ['u@dest.test'], message(`held-${i}`));
      assert.equal(r.final.code, 250, r.final.raw);
      await d.cmd('QUIT');
      d.close();
      assert.deepEqual(storedAt(`held-${i}`, a, b), [`${a.host}:${a.port}`], `held-${i} went the old way`);
    }
    // An invalid config is refused with its path, and the running one keeps serving.
    await assert.rejects(
      service.reload(parseConfig(config(b.port, '', ', ca: /nonexistent/ca.pem'))),
      /listener relay: .*\/nonexistent\/ca\.pem/,
    );
    const added = await dial(service.addressOf('added').port);
    await added.cmd('EHLO x.test');
    assert.equal((await sendMessage(added, 'a@client.test', ['u@dest.test'], message('via-added'))).final.code, 250);
    added.close();
    stop = true;
    await Promise.all(load);

    assert.deepEqual(failures, [], 'no client saw a failure');
    assert.ok(afterCount > 0);
    for (const s of sent) {
      const where = storedAt(s.id, a, b);
      assert.equal(where.length, 1, `${s.id} stored once`);
      if (s.afterReload) assert.equal(where[0], `${b.host}:${b.port}`, `${s.id}, opened after the reload, took the new route`);
    }
    assert.deepEqual(storedAt('via-added', a, b), [`${b.host}:${b.port}`]);
  });

  test('what needs a restart is refused and said: the audit log, the admin listener, the store', async () => {
    const next = parseConfig(config(b.port) + 'audit: { file: /tmp/elsewhere.jsonl }\n');
    await assert.rejects(service.reload(next), /audit changed: that needs a restart/);
  });
});

describe('reload: cached sessions under a trust key no listener uses any more are dropped', () => {
  test('a tunnel whose upstream trust changed: its slot is forgotten; a change of limits only keeps it', async () => {
    const cert = makeCert(['localhost']);
    const tls = await startNodeTlsServer({ cert, maxVersion: 'TLSv1.3' });
    const tunnel = (verify: string, maxConnections = 1000): string => `
listeners:
  - name: t
    type: tunnel
    listen: 127.0.0.1:0
    maxConnections: ${maxConnections}
    upstream: { host: 127.0.0.1, port: ${tls.port}, servername: localhost, ca: ${cert.certFile}, verify: ${verify} }
`;
    const service = await Service.start(parseConfig(tunnel('true')), new AuditLog());
    try {
      // One connection through the tunnel: the server's tickets land in the store.
      const s = createConnection(service.addressOf('t').port, '127.0.0.1');
      s.end('GET /\n');
      let page = '';
      for await (const chunk of s) page += String(chunk);
      assert.match(page, /New, TLSv1\.3/);
      await tls.closedAtLeast(1);
      const stored = async (): Promise<number> => (await service.store.health.size()).destinations;
      while ((await stored()) === 0) await new Promise((r) => setImmediate(r));

      const limitsOnly = await service.reload(parseConfig(tunnel('true', 500)));
      assert.deepEqual([limitsOnly.replaced, limitsOnly.forgotten, await stored()], [['t'], 0, 1]);
      const trustChanged = await service.reload(parseConfig(tunnel('chain', 500)));
      assert.deepEqual([trustChanged.replaced, trustChanged.forgotten, await stored()], [['t'], 1, 0]);
    } finally {
      await service.stop(1000);
      await tls.stop();
    }
  });
});

describe('reload from the command line: SIGHUP and `ticketbooth reload`', () => {
  let a: FaultServer;
  let b: FaultServer;
  let serve: RunningProcess;
  let file: string;
  const cli = ['--import', 'tsx', 'src/cli.ts'];
  // The admin section stays as it started (an ephemeral port): changing it would need a restart.
  const write = (port: number, ca = '', extra = ''): void =>
    writeFileSync(file, config(port, extra, ca) + 'admin: { listen: "127.0.0.1:0" }\n');

  before(async () => {
    a = await startFaultServer({ name: 'a.test' });
    b = await startFaultServer({ name: 'b.test' });
    file = join(mkdtempSync(join(tmpdir(), 'tb-reload-')), 'ticketbooth.yaml');
    write(a.port);
    serve = await startProcess(process.execPath, [...cli, 'serve', '--config', file], {
      ready: /admin .* listening on 127\.0\.0\.1:(\d+)/,
    });
  });
  after(async () => {
    await serve?.stop();
    await a?.stop();
    await b?.stop();
  });

  test('reload applies the edited file and says so on stderr, with the address of the listener it added; a broken file is refused with exit 1 and the old config serves', async () => {
    const reloadUrl = `http://127.0.0.1:${serve.ready[1]}/reload`;
    const relayPort = Number(/relay listening on 127\.0\.0\.1:(\d+)/.exec(serve.output())![1]);
    const send = async (id: string): Promise<void> => {
      const d = await dial(relayPort);
      await d.cmd('EHLO x.test');
      assert.equal((await sendMessage(d, 'a@client.test', ['u@dest.test'], message(id))).final.code, 250);
      d.close();
    };
    await send('before');
    write(b.port, '', SECOND_LISTENER.replace('PORT', String(b.port)));
    const ok = await run(process.execPath, [...cli, 'reload', '--url', reloadUrl]);
    assert.match(ok.stdout, /^reloaded: added added on 127\.0\.0\.1:\d+; replaced relay on 127\.0\.0\.1:\d+/);
    await send('after');
    assert.deepEqual(storedAt('after', a, b), [`${b.host}:${b.port}`]);
    // The server's own stderr has the reload, what asked for it, and where the added listener serves.
    // (Written before the answer was sent, read from the pipe when it arrives.)
    const reloadSaid =
      /ticketbooth reload \(POST \/reload\): reloaded: added added on 127\.0\.0\.1:(\d+); replaced relay on 127\.0\.0\.1:(\d+)/;
    await until(
      () => reloadSaid.test(serve.output()),
      10_000,
      () => `${String(reloadSaid)} in:\n${serve.output()}`,
    );
    const said = reloadSaid.exec(serve.output())!;
    assert.equal(Number(said[2]), relayPort, 'the replaced listener serves on its socket');
    // The address said is the one that serves: a message through it reaches the next hop.
    const added = await dial(Number(said[1]));
    await added.cmd('EHLO x.test');
    assert.equal((await sendMessage(added, 'a@client.test', ['u@dest.test'], message('via-added'))).final.code, 250);
    added.close();
    assert.deepEqual(storedAt('via-added', a, b), [`${b.host}:${b.port}`]);

    write(a.port, ', ca: /nonexistent/ca.pem');
    const refused = await run(process.execPath, [...cli, 'reload', '--url', reloadUrl]).catch((e: { code: number; stdout: string }) => e);
    assert.equal((refused as { code?: number }).code, 1);
    assert.match(refused.stdout, /not reloaded: listener relay: .*\/nonexistent\/ca\.pem/);
    const refusedSaid =
      /ticketbooth reload \(POST \/reload\): config not reloaded, the running one stays: listener relay: .*\/nonexistent\/ca\.pem/;
    await until(
      () => refusedSaid.test(serve.output()),
      10_000,
      () => `${String(refusedSaid)} in:\n${serve.output()}`,
    );
    await send('still-b');
    assert.deepEqual(storedAt('still-b', a, b), [`${b.host}:${b.port}`]);

    // SIGHUP reads the file too: fixed, it applies (route back to a, the added listener gone), and says so on stderr.
    write(a.port);
    serve.child.kill('SIGHUP');
    const sighup = new RegExp(
      `SIGHUP: reloaded: replaced relay on 127\\.0\\.0\\.1:${relayPort}; removed added was on 127\\.0\\.0\\.1:${said[1]}`,
    );
    await until(
      () => sighup.test(serve.output()),
      10_000,
      () => `${String(sighup)} in:\n${serve.output()}`,
    );
    await send('back-to-a');
    assert.deepEqual(storedAt('back-to-a', a, b), [`${a.host}:${a.port}`]);
  });
});
