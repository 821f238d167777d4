import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isBound, listeningSockets } from '../../../src/admin/listening-sockets.js';

/**
 * `ticketbooth health` with a config that has no admin section checks that each listener's port is
 * bound, from /proc/net/tcp and tcp6: the parsing (LISTEN rows only, addresses in host byte order)
 * and the matching (the configured address, or a wildcard socket; a host name by port alone).
 */

const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const row = (local: string, state: string): string =>
  `   0: ${local} 00000000:0000 ${state} 00000000:00000000 00:00000000 00000000  1000        0 1526 1 0000000004fe3019 100 0 0 10 0\n`;

test(
  'LISTEN rows of tcp and tcp6 are read, other states left out; no /proc: undefined',
  { skip: endianness() !== 'LE' && 'little-endian rows' },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'proc-net-'));
    writeFileSync(
      join(dir, 'tcp'),
      header +
        row('00000000:2729', '0A') + // 0.0.0.0:10025
        row('0100007F:24F8', '0A') + // 127.0.0.1:9464
        row('0200000A:9C40', '01'), // 10.0.0.2:40000, ESTABLISHED
    );
    writeFileSync(
      join(dir, 'tcp6'),
      header +
        row('00000000000000000000000001000000:28FE', '0A') + // [::1]:10494
        row('0000000000000000FFFF00000100007F:1F90', '0A'), // [::ffff:127.0.0.1]:8080
    );
    const sockets = listeningSockets(dir);
    assert.deepEqual(sockets, [
      { address: '0.0.0.0', port: 10025 },
      { address: '127.0.0.1', port: 9464 },
      { address: '::1', port: 10494 },
      { address: '127.0.0.1', port: 8080 },
    ]);
    assert.equal(listeningSockets(join(dir, 'absent')), undefined);
  },
);

test('a listener is bound when a socket has its port and its address or a wildcard one', () => {
  const sockets = [
    { address: '0.0.0.0', port: 10025 },
    { address: '127.0.0.1', port: 9464 },
    { address: '::1', port: 10494 },
  ];
  assert.equal(isBound('0.0.0.0', 10025, sockets), true);
  assert.equal(isBound('10.1.2.3', 10025, sockets), true, 'served by the wildcard socket');
  assert.equal(isBound('127.0.0.1', 9464, sockets), true);
  assert.equal(isBound('10.1.2.3', 9464, sockets), false, 'another address on that port');
  assert.equal(isBound('::1', 10494, sockets), true);
  assert.equal(isBound('localhost', 9464, sockets), true, 'a host name: the port alone');
  assert.equal(isBound('0.0.0.0', 10026, sockets), false);
});
