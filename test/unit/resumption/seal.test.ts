import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EntryCodec } from '../../../src/resumption/redis-entry.js';
import { parseSealKey, Sealer, type SealKey } from '../../../src/resumption/seal.js';
import { loadSealer } from '../../../src/resumption/seal-keys.js';

/** Sealing (AES-256-GCM, a derived key per blob), rotation, key files, and the entries the Redis store writes. */

const key = (id: string): SealKey => ({ id, key: randomBytes(32) });
const ctx = (s: string): Buffer => Buffer.from(s);
const session = Buffer.concat([Buffer.from('\0nodejs:tls:session:1\0', 'latin1'), randomBytes(700)]);

test('seal then open gives the bytes back; the blob shows none of them and differs each time', () => {
  const s = new Sealer([key('k1')], 'k1');
  const a = s.seal(session, ctx('dest-a'));
  const b = s.seal(session, ctx('dest-a'));
  assert.notDeepEqual(a, b, 'a fresh salt per blob');
  assert.equal(a.length, session.length + 4 + 1 + 2 + 16 + 16);
  assert.equal(a.includes(Buffer.from('nodejs:tls:session')), false);
  assert.equal(a.includes(session.subarray(40, 72)), false);
  assert.deepEqual(s.open(a, ctx('dest-a')), { ok: true, plain: session });
});

test('another context, one flipped bit, or a truncated blob does not open', () => {
  const s = new Sealer([key('k1')], 'k1');
  const blob = s.seal(session, ctx('dest-a'));
  assert.deepEqual(s.open(blob, ctx('dest-b')), { ok: false, why: 'unauthentic', keyId: 'k1' });
  for (const at of [8, 30, blob.length - 1]) {
    const bad = Buffer.from(blob);
    bad[at] ^= 1;
    assert.equal(s.open(bad, ctx('dest-a')).ok, false, `bit flipped at ${at}`);
  }
  assert.equal(s.open(blob.subarray(0, 20), ctx('dest-a')).ok, false);
  assert.deepEqual(s.open(session, ctx('dest-a')), { ok: false, why: 'unsealed' });
});

test('rotation: the current key seals, every listed key opens, a removed key is named', () => {
  const [k1, k2] = [key('k1'), key('k2')];
  const before = new Sealer([k1], 'k1');
  const during = new Sealer([k2, k1], 'k2');
  const after = new Sealer([k2], 'k2');
  const old = before.seal(session, ctx('d'));
  assert.equal(during.open(old, ctx('d')).ok, true);
  const fresh = during.seal(session, ctx('d'));
  assert.equal(before.open(fresh, ctx('d')).ok, false);
  assert.deepEqual(after.open(fresh, ctx('d')), { ok: true, plain: session });
  assert.deepEqual(after.open(old, ctx('d')), { ok: false, why: 'unknown-key', keyId: 'k1' });
  // The same id with other bytes is not "unknown": it fails authentication.
  assert.deepEqual(new Sealer([key('k1')], 'k1').open(old, ctx('d')), { ok: false, why: 'unauthentic', keyId: 'k1' });
  assert.throws(() => new Sealer([k1], 'k2'), /current key k2 is not among the keys/);
});

test('a key is 32 raw bytes or their base64 (standard or URL alphabet), nothing else', () => {
  const raw = randomBytes(32);
  assert.deepEqual(parseSealKey(raw), raw);
  assert.deepEqual(parseSealKey(Buffer.from(`${raw.toString('base64')}\n`)), raw);
  assert.deepEqual(parseSealKey(Buffer.from(raw.toString('base64url'))), raw);
  for (const bad of [randomBytes(31), Buffer.from(randomBytes(24).toString('base64')), Buffer.from(`${raw.toString('hex')}`)]) {
    assert.throws(() => parseSealKey(bad), /neither 32 raw bytes nor their base64 \(make one with: openssl rand -base64 32\)/);
  }
});

test('keys load from a file or a variable; a bad one fails naming the key, never showing it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-seal-'));
  try {
    const [a, b] = [randomBytes(32), randomBytes(32)];
    writeFileSync(join(dir, 'a.key'), a);
    const env = { TB_B: b.toString('base64'), TB_SHORT: 'c2hvcnQ=' };
    const s = loadSealer(
      {
        keys: [
          { id: 'a', file: join(dir, 'a.key') },
          { id: 'b', env: 'TB_B' },
        ],
        current: 'b',
      },
      env,
    );
    assert.equal(s.currentId, 'b');
    assert.equal(new Sealer([{ id: 'b', key: b }], 'b').open(s.seal(session, ctx('x')), ctx('x')).ok, true);
    assert.throws(
      () => loadSealer({ keys: [{ id: 'c', env: 'TB_SHORT' }], current: 'c' }, env),
      (err: Error) =>
        /^cache\.store\.seal\.keys\[0\] \(c\): variable TB_SHORT holds 8 bytes/.test(err.message) && !err.message.includes('c2hv'),
    );
    assert.throws(() => loadSealer({ keys: [{ id: 'd', env: 'TB_NONE' }], current: 'd' }, env), /TB_NONE is not set/);
    assert.throws(
      () => loadSealer({ keys: [{ id: 'e', file: join(dir, 'none') }], current: 'e' }, env),
      /cache\.store\.seal\.keys\[0\] \(e\): cannot read key file .*none: no such file or directory \(ENOENT\)/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('entries: the clear prefix and the destination are bound; what does not open is dropped, counted, said once', () => {
  const said: string[] = [];
  const codec = new EntryCodec(new Sealer([key('k1')], 'k1'), (m) => said.push(m));
  const ticket = { session, hash: 'abc123', expiresAt: 1_800_000_000_000 };
  const entry = codec.encode('dest-a', ticket);
  assert.ok(entry.subarray(0, 21).equals(Buffer.from('1800000000000:abc123:')), 'the scripts still read expiry and hash');
  assert.deepEqual(codec.decode('dest-a', entry), ticket);
  assert.equal(codec.decode('dest-b', entry), undefined, 'moved to another destination');
  const later = Buffer.concat([Buffer.from('1900000000000'), entry.subarray(13)]);
  assert.equal(codec.decode('dest-a', later), undefined, 'expiry altered');
  assert.equal(codec.decode('dest-a', Buffer.concat([Buffer.from('1:h:'), session])), undefined, 'written in the clear');
  assert.deepEqual(codec.dropped, { 'unknown-key': 0, unauthentic: 2, unsealed: 1, sealed: 0 });
  assert.equal(said.length, 2, said.join('\n'));
  assert.match(said[0], /dropped a session sealed under key "k1" that fails authentication.*reason="unauthentic"/);

  const value = codec.encodeValue('sts:example.org', '{"mode":"enforce"}');
  assert.equal(value.includes(Buffer.from('enforce')), false);
  assert.equal(codec.decodeValue('sts:example.org', value), '{"mode":"enforce"}');
  assert.equal(codec.decodeValue('sts:example.net', value), undefined, 'a policy moved to another domain');

  // An instance without keys neither offers a sealed session nor reads a sealed value.
  const plain = new EntryCodec(undefined, () => undefined);
  assert.equal(plain.decode('dest-a', entry), undefined);
  assert.equal(plain.dropped.sealed, 1);
});
