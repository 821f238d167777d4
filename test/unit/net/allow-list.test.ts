import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AllowList } from '../../../src/net/allow-list.js';

describe('allow list', () => {
  const list = new AllowList(['127.0.0.0/8', '::1/128', '10.1.2.3']);

  test('ranges and single addresses; IPv4-mapped IPv6 is seen as IPv4; anything else is refused', () => {
    for (const a of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.2', '10.1.2.3']) assert.equal(list.allows(a), true, a);
    for (const a of ['10.1.2.4', '192.0.2.1', '::2', '::ffff:192.0.2.1', 'not-an-address', '', undefined])
      assert.equal(list.allows(a), false, String(a));
  });

  test('verdicts are remembered per address and stay right past the memo bound', () => {
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5000; i++) {
        const a = `127.${(i >> 8) & 255}.${i & 255}.1`;
        const b = `192.0.${(i >> 8) & 255}.${i & 255}`;
        assert.equal(list.allows(a), true, a);
        assert.equal(list.allows(b), false, b);
      }
    }
  });
});
