import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { Channel, type Port } from '../../../src/workers/channel.js';
import { listenerViews } from '../../../src/workers/listener-views.js';
import { until } from '../../support/until.js';

/** Two ends of an in-process channel; messages are cloned as the cluster channel ('advanced') does. */
function pair(): { a: Port; b: Port; disconnect(): void } {
  const [ea, eb] = [new EventEmitter(), new EventEmitter()];
  const port = (self: EventEmitter, other: EventEmitter): Port => ({
    send: (message, callback) =>
      setImmediate(() => {
        other.emit('message', structuredClone(message));
        callback(null);
      }),
    on: (event, listener) => self.on(event, listener),
    once: (event, listener) => self.once(event, listener),
  });
  return { a: port(ea, eb), b: port(eb, ea), disconnect: () => [ea, eb].forEach((e) => e.emit('disconnect')) };
}

const noTrouble = (what: string): never => assert.fail(`unexpected trouble: ${what}`);

type Server = { add(x: number, y: number): number; fail(): void; bytes(b: Uint8Array): number; tell(s: string): void };
type Client = Record<string, never>;

describe('workers: the channel', () => {
  test('calls answer with the value, or reject with the far side’s message; notes need no answer', async () => {
    const { a, b } = pair();
    const heard: string[] = [];
    const server = new Channel<Server, Client>(b, 'the worker', noTrouble);
    server.serve({
      add: async (x, y) => x + y,
      fail: () => {
        throw new Error('no such ticket');
      },
      bytes: (u) => u.byteLength,
      tell: (s) => void heard.push(s),
    });
    const client = new Channel<Client, Server>(a, 'the primary', noTrouble);
    assert.equal(await client.call('add', 2, 3), 5);
    await assert.rejects(client.call('fail'), /no such ticket/);
    assert.equal(await client.call('bytes', Buffer.from('four')), 4);
    await client.note('tell', 'hello');
    assert.deepEqual(heard, ['hello']);
  });

  test('a note that fails is told to `trouble` on the side that ran it, by method and far side', async () => {
    const { a, b } = pair();
    const heard: string[] = [];
    new Channel<Server, Client>(b, 'the worker', (what) => heard.push(what)).serve({
      tell: () => {
        throw new Error('disk full');
      },
    });
    await new Channel<Client, Server>(a, 'the primary', noTrouble).note('tell', 'x');
    await until(() => heard.length === 1, 5000, 'the trouble');
    assert.match(heard[0], /tell from the worker failed: Error: disk full/);
  });

  test('a method the far side does not serve is refused by name; a gone far side fails every pending call', async () => {
    const { a, b, disconnect } = pair();
    new Channel<Server, Client>(b, 'the worker', noTrouble).serve({ add: () => new Promise<number>(() => undefined) });
    const client = new Channel<Client, Server>(a, 'the primary', noTrouble);
    await assert.rejects(client.call('fail'), /asked for fail, which is not served here/);
    const hanging = client.call('add', 1, 1);
    disconnect();
    await assert.rejects(hanging, /the primary is gone/);
    await assert.rejects(client.call('add', 1, 1), /the primary is gone/);
  });
});

describe('workers: listener views', () => {
  test("sum each listener's workers: connections, pool counts and idle; the address is any worker's", () => {
    const at = { address: '127.0.0.1', family: 'IPv4', port: 2525 } satisfies AddressInfo;
    const workers = [
      [
        { name: 'mx', address: at, activeConnections: 3, pool: { stats: { pooled: 2, reused: 1 }, idle: 1 } },
        { name: 'tun', address: at, activeConnections: 1 },
      ],
      [{ name: 'mx', address: at, activeConnections: 4, pool: { stats: { pooled: 5 }, idle: 2 } }],
    ];
    const [mx, tun, gone] = listenerViews(['mx', 'tun', 'gone'], () => workers);
    assert.equal(mx.activeConnections, 7);
    assert.deepEqual(mx.upstreamPool, { stats: { pooled: 7, reused: 1 }, idle: 3 });
    assert.equal(mx.address().port, 2525);
    assert.equal(tun.activeConnections, 1);
    assert.equal(tun.upstreamPool, undefined);
    assert.equal(gone.activeConnections, 0);
    assert.equal(gone.address().port, undefined, 'no worker serves it yet: not bound');
  });
});
