import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { runControl } from '../../stress/control.js';
import { runFuzz, type FuzzResult } from '../../stress/fuzz.js';
import { runLoad } from '../../stress/load.js';

/**
 * A short, seeded slice of `npm run stress` (issue 8 part 5): the negative control, 300 fuzz
 * sessions (every kind about 8 times) and a small load, each against a child ticketbooth process.
 * A failure names the replayable session: `npm run stress -- fuzz --seed 1 --session N`.
 */
const SEED = 1;

test('negative control: the checker catches a dropped, duplicated, altered, invented and smuggled message', async () => {
  const r = await runControl({ seed: SEED });
  assert.ok(r.ok, r.section.lines.join('\n'));
});

describe('fuzz slice: 300 seeded sessions over every kind of bad input', () => {
  let fuzz: FuzzResult;
  before(async () => {
    fuzz = await runFuzz({ seed: SEED, sessions: 300, concurrency: 16, maxSeconds: 50 });
  });
  const report = (): string => fuzz.section.lines.join('\n');

  test('every session ran and ticketbooth did not crash', () => {
    assert.equal(fuzz.sessions, 300, report());
    assert.equal(fuzz.crashed, undefined, report());
  });

  test('0 lost, duplicated, altered or phantom messages at the next hop', () => {
    const v = fuzz.verdict;
    assert.deepEqual(
      { lost: v.lost.length, duplicated: v.duplicated.length, altered: v.altered.length, phantom: v.phantom.length },
      { lost: 0, duplicated: 0, altered: 0, phantom: 0 },
      report(),
    );
    assert.ok(v.accepted > 150, `most sessions deliver something: ${v.accepted}`);
  });

  test('every reply is the documented one', () => {
    assert.equal(fuzz.mismatches.length, 0, report());
  });

  test('no audit line with an undefined client address', () => {
    assert.equal(fuzz.undefinedClients, 0, report());
  });
});

test('load slice: 50 concurrent SMTP sessions delivered once each, 50 tunnel echoes byte-exact', async () => {
  const r = await runLoad({ smtp: 50, tunnels: 50, seed: SEED });
  assert.ok(r.ok, r.section.lines.join('\n'));
  assert.equal(r.smtpAccepted, 50);
  assert.equal(r.echoesExact, 50);
});
