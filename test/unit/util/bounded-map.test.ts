import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BoundedMap } from '../../../src/util/bounded-map.js';

test('the least recently used entry goes first; get refreshes, peek does not', () => {
  const evicted: string[] = [];
  const m = new BoundedMap<string, number>(2, (k) => evicted.push(k));
  m.set('a', 1).set('b', 2);
  assert.equal(m.get('a'), 1); // a is now the most recent
  m.set('c', 3);
  assert.deepEqual(evicted, ['b']);
  assert.equal(m.peek('a'), 1); // a stays older than c
  m.set('d', 4);
  assert.deepEqual(evicted, ['b', 'a']);
  assert.deepEqual([...m.keys()], ['c', 'd']);
});

test('replacing or deleting is not an eviction; the bound must be a positive integer', () => {
  const evicted: string[] = [];
  const m = new BoundedMap<string, number>(1, (k) => evicted.push(k));
  m.set('a', 1).set('a', 2);
  m.delete('a');
  assert.deepEqual(evicted, []);
  assert.equal(m.size, 0);
  assert.throws(() => new BoundedMap(0), RangeError);
});
