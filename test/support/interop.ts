import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/**
 * Interop tests need Debian programs (openssl, postfix, haproxy, dnsmasq, redis-server, chromium).
 * Without one, `npm test` skips with the reason; CI sets TICKETBOOTH_REQUIRE_INTEROP=1, which
 * turns that skip into a failure.
 */
export const requireInterop = process.env.TICKETBOOTH_REQUIRE_INTEROP === '1';

export function which(tool: string): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/bin', '/usr/local/sbin']) {
    try {
      execFileSync('test', ['-x', `${dir}/${tool}`]);
      return `${dir}/${tool}`;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** The tools missing from this machine, or a reason string for `{ skip }` (undefined when all are here). */
export function missing(...tools: string[]): string | undefined {
  const absent = tools.filter((t) => which(t) === undefined);
  if (absent.length === 0) return undefined;
  const reason = `needs ${absent.join(', ')} (Debian package${absent.length > 1 ? 's' : ''}); .ci/run installs ${absent.length > 1 ? 'them' : 'it'}`;
  if (requireInterop) throw new Error(`TICKETBOOTH_REQUIRE_INTEROP=1 but ${reason}`);
  return reason;
}

/**
 * Use as `test('name', { skip: missing('haproxy') }, ...)`; for tests that find out late,
 * call `skipOrFail(t, reason)` inside.
 */
export function skipOrFail(t: TestContext, reason: string): void {
  if (requireInterop) throw new Error(`TICKETBOOTH_REQUIRE_INTEROP=1 but ${reason}`);
  t.skip(reason);
}
