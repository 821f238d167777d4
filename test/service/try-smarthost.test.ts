import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { missing } from '../support/interop.js';

const run = promisify(execFile);

/** Postfix's master starts only as root; the script says so and stops. */
const skip = missing('postfix', 'swaks', 'openssl', 'script') ?? (process.getuid?.() === 0 ? undefined : 'needs root (Postfix)');

/** Whether `pid` is a process that has not exited (an unreaped zombie has: its parent is not ours to wait on). */
function running(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * docs/try-smarthost.md's walk-through, examples/try-smarthost.sh, as a reader runs it: the
 * destination Postfix's own log says it resumed sessions, the report follows, and nothing it
 * started is left running. Its duration is printed, not asserted (a busy machine is slower).
 */
test(
  'examples/try-smarthost.sh: the destination Postfix resumes sessions through ticketbooth, and everything stops',
  { skip },
  async (t) => {
    const started = Date.now();
    // A bound for a stuck run only: a busy two-core machine took 15–37 s.
    const { stdout } = await run('bash', ['examples/try-smarthost.sh'], {
      timeout: 180_000,
      env: { ...process.env, MESSAGES: '4', REUSE: 'never', KEEP: '' },
    });
    t.diagnostic(`examples/try-smarthost.sh took ${((Date.now() - started) / 1000).toFixed(1)} s`);

    // The destination's own verdicts: the first connection is a full handshake, later ones resumed.
    const verdicts = [...stdout.matchAll(/^ {2}=> (resumed|new session)/gm)].map((m) => m[1]);
    assert.equal(verdicts.length, 4, stdout);
    assert.equal(verdicts[0], 'new session', stdout);
    assert.ok(verdicts.includes('resumed'), stdout);
    const [, resumed, total] = /the destination resumed (\d+) of (\d+) TLS sessions/.exec(stdout) ?? [];
    assert.equal(total, '4');
    assert.ok(Number(resumed) >= 1, stdout);
    assert.equal(verdicts.filter((v) => v === 'resumed').length, Number(resumed));

    // ticketbooth's report agrees with the destination.
    assert.match(stdout, /ticketbooth audit: 4 TLS handshakes to 1 destination/);
    assert.match(stdout, new RegExp(`connections 4, resumed ${resumed} `));

    // Nothing left behind: the processes it named and its work dir are gone.
    const [, tb, dest, legacy, dir] =
      /^pids: ticketbooth (\d+), destination master (\d+), legacy master (\d+); work dir (\S+)$/m.exec(stdout) ?? [];
    assert.ok(tb && dest && legacy && dir, stdout);
    for (const pid of [tb, dest, legacy]) assert.equal(running(Number(pid)), false, `process ${pid} still running`);
    assert.equal(existsSync(dir), false, `${dir} left behind`);
  },
);
