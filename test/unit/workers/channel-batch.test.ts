import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { Channel, type Port } from '../../../src/workers/channel.js';

/**
 * The channel's outbox: what one turn sends goes as one message, and a message that cannot be
 * cloned (the cluster channel serializes as `send` is called, and throws) fails alone, not the
 * others that went with it.
 */

/** Two ends; each `send` clones at once, as the cluster channel does, and delivers on a later turn. */
function pair(): { a: Port; b: Port; sent: unknown[] } {
  const [ea, eb] = [new EventEmitter(), new EventEmitter()];
  const sent: unknown[] = [];
  const port = (self: EventEmitter, other: EventEmitter): Port => ({
    send: (message, callback) => {
      const copy = structuredClone(message);
      sent.push(copy);
      setImmediate(() => {
        other.emit('message', copy);
        callback(null);
      });
    },
    on: (event, listener) => self.on(event, listener),
    once: (event, listener) => self.once(event, listener),
  });
  return { a: port(ea, eb), b: port(eb, ea), sent };
}

type Server = { echo(x: unknown): unknown; bad(): unknown };

describe('workers: the channel outbox', () => {
  test('calls of one turn go as one message and each gets its answer', async () => {
    const { a, b, sent } = pair();
    new Channel<Server, Record<string, never>>(b, 'the worker', assert.fail).serve({ echo: (x) => x, bad: () => undefined });
    const client = new Channel<Record<string, never>, Server>(a, 'the primary', assert.fail);
    assert.deepEqual(await Promise.all([1, 2, 3].map((x) => client.call('echo', x))), [1, 2, 3]);
    assert.equal(sent.length, 2); // the three calls, then the three answers
  });

  test('a call or an answer that cannot be cloned fails alone', async () => {
    const { a, b } = pair();
    const heard: string[] = [];
    new Channel<Server, Record<string, never>>(b, 'the worker', (w) => heard.push(w)).serve({
      echo: (x) => x,
      bad: () => () => 'a function is not cloneable',
    });
    const client = new Channel<Record<string, never>, Server>(a, 'the primary', assert.fail);
    const [good, unsendable] = await Promise.allSettled([client.call('echo', 'ok'), client.call('echo', () => 'no')]);
    assert.deepEqual(good, { status: 'fulfilled', value: 'ok' });
    assert.equal(unsendable.status, 'rejected');
    // The bad answer is said on the side that could not send it; the good one beside it arrives.
    void client.call('bad');
    assert.equal(await client.call('echo', 'still'), 'still');
    assert.match(heard.join('\n'), /an answer to the worker could not be sent/);
  });
});
