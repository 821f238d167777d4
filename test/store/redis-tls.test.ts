import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { issueCert, makeCa, makeCert, type CertPair, type IssuedPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startRedisServer, type RedisServer, type RedisTlsFiles } from '../support/redis-server.js';
import { startSentinelCluster } from '../support/redis-sentinel.js';
import { startSServer, verdictPlain, type SServer } from '../support/servers.js';
import { startTunnelService } from '../support/tunnel-service.js';

/**
 * Sealed in transit: Debian's redis-server (and redis-sentinel) listening with TLS alone
 * (`port 0`, `tls-port`, `tls-auth-clients yes`), certificates from one test CA made with
 * openssl. ticketbooth connects with `cache.store.tls` (CA, client certificate and key) and an
 * ACL user; a wrong CA or no client certificate fails the start with a message naming the store.
 */

const skip = missing('redis-server', 'redis-sentinel', 'openssl');
const dir = mkdtempSync(join(tmpdir(), 'tb-redis-tls-'));
const PASSWORD = 'acl-user-Pa55';
let ca: CertPair;
let wrongCa: CertPair;
let client: IssuedPair;
let files: RedisTlsFiles;
let redis: RedisServer;
let server: SServer;
const upstreamCert = makeCert(['localhost']);
const passwordFile = join(dir, 'password');

before(async () => {
  if (skip) return;
  ca = makeCa();
  wrongCa = makeCa();
  const serverCert = issueCert(ca, ['localhost', '127.0.0.1']);
  client = issueCert(ca, ['ticketbooth']);
  files = { certFile: serverCert.certFile, keyFile: serverCert.keyFile, caFile: ca.certFile };
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'seal.key'), randomBytes(32));
  // The default user off: only the ACL user gets in.
  redis = await startRedisServer(
    ['--user', 'default', 'off', '--user', 'ticketbooth', 'on', `>${PASSWORD}`, '~*', '&*', '+@all'],
    undefined,
    files,
  );
  server = await startSServer('tls13-anti-replay', upstreamCert);
});

after(async () => {
  await server?.stop();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const tlsFiles = (anchor = ca, withCert = true) => ({
  ca: anchor.certFile,
  ...(withCert ? { cert: client.certFile, key: client.keyFile } : {}),
});
const tunnel = (store: Record<string, unknown>) =>
  startTunnelService({
    upstream: { host: 'localhost', port: server.port, ca: upstreamCert.certFile },
    cache: {
      store: {
        type: 'redis',
        prefix: `tls-${process.pid}:`,
        seal: { keys: [{ id: 's1', file: join(dir, 'seal.key') }], current: 's1' },
        ...store,
      },
    },
  });
const auth = { username: 'ticketbooth', passwordFile };

test('rediss:// with the configured client certificate and ACL user: the fleet store works and resumes', { skip }, async (t) => {
  const tb = await tunnel({ url: redis.url, auth, tls: tlsFiles() });
  const raw = new Redis(redis.url, {
    username: 'ticketbooth',
    password: PASSWORD,
    tls: { ca: ca.cert, cert: client.cert, key: client.key },
  });
  try {
    const verdicts: string[] = [];
    for (let i = 0; i < 5; i++) verdicts.push((await verdictPlain(tb.port)).verdict);
    assert.deepEqual(verdicts, ['New', 'Reused', 'Reused', 'Reused', 'Reused']);
    const keys = await raw.keys(`tls-${process.pid}:*`);
    const clients = (await raw.client('LIST')) as string;
    t.diagnostic(`keys over TLS: ${keys.length}; ticketbooth's connection: ${/user=\S+/.exec(clients.split('\n')[0])?.[0]}`);
    assert.ok(
      keys.some((k) => k.endsWith(':t13')),
      `the slot is in Redis: ${keys.join(' ')}`,
    );
    assert.match(clients, /user=ticketbooth/);
  } finally {
    raw.disconnect();
    await tb.stop();
  }
});

test('a wrong CA, or no client certificate, fails the start with a message naming the store', { skip }, async (t) => {
  const where = new RegExp(`^cache\\.store: cannot reach Redis at rediss://127\\.0\\.0\\.1:${redis.port}/?: `);
  await assert.rejects(tunnel({ url: redis.url, auth, tls: tlsFiles(wrongCa) }), (err: Error) => {
    t.diagnostic(`wrong CA: ${err.message}`);
    assert.match(err.message, where);
    assert.match(err.message, /\(TLS: self-signed certificate in certificate chain\)$/);
    assert.doesNotMatch(err.message, new RegExp(PASSWORD));
    return true;
  });
  await assert.rejects(tunnel({ url: redis.url, auth, tls: tlsFiles(ca, false) }), (err: Error) => {
    t.diagnostic(`no client certificate: ${err.message}`);
    assert.match(err.message, where);
    assert.match(err.message, /\(TLS: tlsv13 alert certificate required\)$/);
    return true;
  });
});

test('TLS to the sentinels and to the primary they name, with the same files', { skip, timeout: 60_000 }, async (t) => {
  const group = await startSentinelCluster({ tls: files, password: PASSWORD });
  try {
    const sentinels = { sentinels: group.sentinelAddresses, name: group.name, auth: { passwordFile } };
    const tb = await tunnel({ ...sentinels, tls: tlsFiles() });
    try {
      const verdicts: string[] = [];
      for (let i = 0; i < 3; i++) verdicts.push((await verdictPlain(tb.port)).verdict);
      assert.deepEqual(verdicts, ['New', 'Reused', 'Reused']);
    } finally {
      await tb.stop();
    }
    await assert.rejects(tunnel({ ...sentinels, tls: tlsFiles(wrongCa) }), (err: Error) => {
      t.diagnostic(`wrong CA: ${err.message}`);
      assert.match(err.message, new RegExp(`^cache\\.store: cannot reach Redis primary of ${group.name} \\(Sentinel 127\\.0\\.0\\.1:`));
      assert.match(err.message, /\(TLS: self-signed certificate in certificate chain\)$/);
      return true;
    });
  } finally {
    await group.stop();
  }
});
