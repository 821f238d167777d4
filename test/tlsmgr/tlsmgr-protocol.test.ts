import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { cacheSchema } from '../../src/config/schema.js';
import { startTlsmgr, type RunningTlsmgr } from '../../src/tlsmgr/command.js';
import { freshTls13Sessions, RawTlsmgrClient } from '../support/tlsmgr-client.js';

// The socket as any client sees it: Postfix's attribute encoding, the announcement, the replies
// tlsmgr(8) gives, and what a malformed, oversized or stuck client gets. Sessions are real (a
// local TLS 1.3 server's tickets); Postfix itself is in tlsmgr-postfix.test.ts.

const STATUS_FAIL = String(-2 >>> 0);
const STATUS_ERR = String(-1 >>> 0);
const ID = 'smtp:127.0.0.1:25:mx.dest.test&p=1&c=aRSA+...&l=may';

describe('tlsmgr socket protocol', () => {
  let tlsmgr: RunningTlsmgr;
  let path: string;
  const events: AuditEvent[] = [];

  before(async () => {
    path = join(mkdtempSync(join(tmpdir(), 'tb-tlsmgr-')), 'ticketbooth');
    const audit = new AuditLog();
    audit.on('event', (e) => events.push(e));
    tlsmgr = await startTlsmgr({ socket: path, cache: cacheSchema.parse({}), audit });
  });
  after(async () => {
    await tlsmgr?.stop();
  });

  test('a private socket: mode 0600', () => {
    const st = statSync(path);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
  });

  test('announces tlsmgr_protocol, then answers policy for smtp as an enabled cache, smtpd as a disabled one', async () => {
    const c = await RawTlsmgrClient.open(path);
    assert.deepEqual([...((await c.next()) ?? [])], [['protocol', 'tlsmgr_protocol']]);
    const smtp = await c.request([
      ['request', 'policy'],
      ['cache_type', 'smtp'],
    ]);
    assert.equal(smtp?.get('status'), '0');
    assert.equal(smtp?.get('cachable'), '1');
    assert.equal(smtp?.get('timeout'), '3600');
    const smtpd = await c.request([
      ['request', 'policy'],
      ['cache_type', 'smtpd'],
    ]);
    assert.deepEqual(
      [...(smtpd ?? [])],
      [
        ['status', '0'],
        ['cachable', '0'],
        ['timeout', '0'],
      ],
    );
    const tkt = await c.request([
      ['request', 'tktkey'],
      ['keyname', ''],
    ]);
    assert.equal(tkt?.get('status'), STATUS_ERR, 'no ticket keys without the real tlsmgr');
    const seed = await c.request([
      ['request', 'seed'],
      ['size', '32'],
    ]);
    assert.equal(seed?.get('status'), '0');
    assert.equal(Buffer.from(seed?.get('seed') ?? '', 'base64').length, 32);
    c.close();
  });

  test('TLS 1.3 tickets are single use: prepended on update, taken on lookup, newest first', async () => {
    const sessions = await freshTls13Sessions();
    assert.ok(sessions.length >= 2, `the server issued ${sessions.length} tickets`);
    const c = await RawTlsmgrClient.open(path);
    await c.next();
    for (const s of sessions) {
      const r = await c.request([
        ['request', 'update'],
        ['cache_type', 'smtp'],
        ['cache_id', ID],
        ['session', s.toString('base64')],
      ]);
      assert.equal(r?.get('status'), '0');
    }
    const got: string[] = [];
    for (let i = 0; i <= sessions.length; i++) {
      const r = await c.request([
        ['request', 'lookup'],
        ['cache_type', 'smtp'],
        ['cache_id', ID],
      ]);
      got.push(r?.get('status') === '0' ? (r.get('session') ?? '') : `status ${r?.get('status')}`);
    }
    assert.deepEqual(got, [...sessions.map((s) => s.toString('base64')).reverse(), `status ${STATUS_ERR}`]);
    const lookups = events.filter((e) => e.event === 'tlsmgr.lookup');
    assert.deepEqual(
      lookups.map((e) => e.vended),
      [...sessions.map(() => 'tls13-ticket'), 'none'],
    );
    // Another cache id (another TLS level, say) never sees these.
    const other = await c.request([
      ['request', 'lookup'],
      ['cache_type', 'lmtp'],
      ['cache_id', ID],
    ]);
    assert.equal(other?.get('status'), STATUS_ERR);
    assert.ok(!JSON.stringify(events).includes(sessions[0].toString('base64').slice(0, 40)), 'no session in the audit log');
    c.close();
  });

  test('a malformed request gets status -2 and the connection closes; the service goes on', async () => {
    for (const bad of [
      [['request', 'lookup']], // attributes missing
      [
        ['request', 'lookup'],
        ['cache_type', 'smtp'],
        ['cache_id', 'x'],
        ['extra', '1'],
      ],
      [['request', 'nonsense']],
      [
        ['request', 'update'],
        ['cache_type', 'smtp'],
        ['cache_id', 'x'],
        ['session', '!!not base64'],
      ],
    ] as Array<Array<[string, string]>>) {
      const c = await RawTlsmgrClient.open(path);
      await c.next();
      const r = await c.request(bad);
      assert.ok(
        r?.get('status') === STATUS_FAIL || r?.get('status') === STATUS_ERR,
        `${JSON.stringify(bad)}: ${JSON.stringify([...(r ?? [])])}`,
      );
      c.close();
    }
    const dup = await RawTlsmgrClient.open(path);
    await dup.next();
    dup.socket.write(Buffer.from('request\0policy\0request\0policy\0\0', 'latin1'));
    assert.equal((await dup.next())?.get('status'), STATUS_FAIL);
    assert.equal(await dup.next(), undefined, 'closed after a list it cannot read');
    assert.ok(tlsmgr.server.rejected >= 1);
  });

  test('a request over the size limit is refused without reading it all', async () => {
    const c = await RawTlsmgrClient.open(path);
    await c.next();
    c.socket.write(Buffer.concat([Buffer.from('request\0update\0cache_type\0smtp\0cache_id\0'), Buffer.alloc(200_000, 0x41)]));
    assert.equal((await c.next())?.get('status'), STATUS_FAIL);
    assert.equal(await c.next(), undefined);
  });

  test('a client stuck mid-request holds up nobody else', async () => {
    const stuck = await RawTlsmgrClient.open(path);
    await stuck.next();
    stuck.socket.write(Buffer.from('request\0lookup\0cache_type\0smtp\0cache_id\0half', 'latin1'));
    const other = await RawTlsmgrClient.open(path);
    await other.next();
    const r = await other.request([
      ['request', 'policy'],
      ['cache_type', 'smtp'],
    ]);
    assert.equal(r?.get('status'), '0');
    // A server that took one client at a time would answer only after giving up on the stuck one.
    assert.equal(stuck.closed, false, 'answered while the stuck client is still connected, mid-request');
    stuck.close();
    other.close();
  });

  test('a flood of unreadable requests: each refused, one stderr line a minute, not one each', async () => {
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = (chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (String(chunk).includes('malformed request')) lines.push(String(chunk));
      return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
    };
    try {
      for (let i = 0; i < 5; i++) {
        // The same attribute twice: the framing is lost, the connection is closed after a -2.
        const c = await RawTlsmgrClient.open(path);
        await c.next();
        const r = await c.request([
          ['request', 'lookup'],
          ['request', 'lookup'],
        ]);
        assert.equal(r?.get('status'), STATUS_FAIL);
        c.close();
      }
    } finally {
      process.stderr.write = write;
    }
    assert.ok(lines.length <= 1, lines.join(''));
  });
});
