import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AuditLog } from '../../src/audit/audit-log.js';
import { parseConfig } from '../../src/config/load.js';
import { cacheSchema } from '../../src/config/schema.js';
import { Service } from '../../src/service/service.js';
import { startTlsmgr, type RunningTlsmgr } from '../../src/tlsmgr/command.js';
import { missing } from '../support/interop.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { freshTls13Sessions, RawTlsmgrClient } from '../support/tlsmgr-client.js';

const ID = 'smtp:[192.0.2.1]:25:mx.example&p=1&l=may';
const socketPath = (name: string): string => join(mkdtempSync(join(tmpdir(), 'tb-tlsmgr-')), name);

async function client(path: string): Promise<RawTlsmgrClient> {
  const c = await RawTlsmgrClient.open(path);
  await c.next(); // the announcement
  return c;
}

const update = (c: RawTlsmgrClient, s: Buffer) =>
  c.request([
    ['request', 'update'],
    ['cache_type', 'smtp'],
    ['cache_id', ID],
    ['session', s.toString('base64')],
  ]);
const lookup = async (c: RawTlsmgrClient): Promise<string | undefined> => {
  const r = await c.request([
    ['request', 'lookup'],
    ['cache_type', 'smtp'],
    ['cache_id', ID],
  ]);
  return r?.get('status') === '0' ? r.get('session') : undefined;
};

describe('two ticketbooth tlsmgrs on one Redis (two Postfix hosts)', { skip: missing('redis-server', 'openssl') }, () => {
  let redis: RedisServer;
  const running: RunningTlsmgr[] = [];
  after(async () => {
    for (const r of running) await r.stop();
    await redis?.stop();
  });

  test("tickets one host received resume the other's connections; none is vended twice", async () => {
    redis = await startRedisServer();
    const store = { type: 'redis', url: redis.url, prefix: `tlsmgr-${process.pid}:` };
    for (const name of ['a', 'b']) {
      running.push(await startTlsmgr({ socket: socketPath(name), cache: cacheSchema.parse({ store }), audit: new AuditLog() }));
    }
    const [a, b] = await Promise.all(running.map((r) => client(r.server.socketPath)));
    const sessions = await freshTls13Sessions();
    for (const s of sessions) assert.equal((await update(a, s))?.get('status'), '0');
    const vended = [await lookup(b), await lookup(a), await lookup(b)];
    assert.deepEqual(vended, [...sessions.map((s) => s.toString('base64')).reverse(), undefined]);
    a.close();
    b.close();
  });
});

describe('serve with a tlsmgr section', () => {
  let service: Service | undefined;
  after(async () => {
    await service?.stop(0);
  });

  test('the socket serves beside the listeners, on the cache section', async () => {
    const path = socketPath('ticketbooth');
    service = await Service.start(
      parseConfig(`
listeners:
  - { name: t, type: tunnel, listen: 127.0.0.1:0, upstream: { host: 127.0.0.1, port: 1 } }
cache: { maxAgeSeconds: 600, reuse: adaptive }
tlsmgr: { socket: ${path} }
`),
    );
    const c = await client(path);
    const policy = await c.request([
      ['request', 'policy'],
      ['cache_type', 'lmtp'],
    ]);
    assert.deepEqual(
      [...(policy ?? [])],
      [
        ['status', '0'],
        ['cachable', '1'],
        ['timeout', '600'],
      ],
    );
    c.close();
  });
});
