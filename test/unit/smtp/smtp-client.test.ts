import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { AuditLog } from '../../../src/audit/audit-log.js';
import type { UpstreamErrorEvent } from '../../../src/audit/events.js';
import { UpstreamError } from '../../../src/errors/index.js';
import { SmtpClient } from '../../../src/upstream/smtp-client/client.js';
import { until } from '../../support/until.js';

/**
 * The one SMTP client against scripted servers on loopback (no external program): every failure
 * is an `UpstreamError` with the audit's stage words and a stable code, and one before TLS writes
 * exactly one `upstream.error` line.
 */

/** A server that greets with `greeting`, then answers each command line with `answer(line)` (nothing when undefined). */
type Script = { greeting?: string; answer: (line: string) => string | undefined };

/** Every line any scripted server received, in order. */
const seen: string[] = [];

/** `script` as the server of one connection made by `SmtpClient.connect`; `events`: the client's `upstream.error` lines. */
async function withServer<T>(
  script: Script,
  fn: (client: SmtpClient, events: UpstreamErrorEvent[]) => Promise<T>,
  // Long enough that no machine times out a server that answers; the timeout test sets its own.
  replyMs = 5000,
): Promise<T> {
  const s = createServer((c: Socket) => {
    c.on('error', () => undefined);
    if (script.greeting !== undefined) c.write(script.greeting);
    let buffered = '';
    c.on('data', (d: Buffer) => {
      buffered += d.toString('latin1');
      for (let nl = buffered.indexOf('\r\n'); nl >= 0; nl = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 2);
        seen.push(line);
        const out = script.answer(line);
        if (out !== undefined) c.write(out);
      }
    });
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const audit = new AuditLog();
  const events: UpstreamErrorEvent[] = [];
  audit.on('event', (e) => {
    if (e.event === 'upstream.error') events.push(e);
  });
  const client = await SmtpClient.connect('127.0.0.1', (s.address() as AddressInfo).port, {
    connectMs: 1000,
    replyMs,
    report: { audit, listener: 'unit' },
  });
  try {
    return await fn(client, events);
  } finally {
    client.abort();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

async function failure(p: Promise<unknown>): Promise<UpstreamError> {
  const err = await p.then(
    () => assert.fail('the step succeeded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof UpstreamError, String(err));
  return err;
}

const ESMTP = (ext: string[]) => (line: string) => {
  if (line.startsWith('EHLO')) return ['mx.test', ...ext].map((l, i, a) => `250${i === a.length - 1 ? ' ' : '-'}${l}\r\n`).join('');
  return undefined;
};

describe('the SMTP client: stages and codes', () => {
  test("a greeting other than 220: stage greeting, ERR_SMTP_GREETING, the server's code kept; one upstream.error line", async () => {
    await withServer({ greeting: '554 5.3.2 go away\r\n', answer: () => undefined }, async (client, events) => {
      const err = await failure(client.greeting());
      assert.deepEqual([err.stage, err.code, err.replyCode], ['greeting', 'ERR_SMTP_GREETING', 554]);
      assert.match(err.message, /^127\.0\.0\.1:\d+ greeted with 554 5\.3\.2 go away$/);
      assert.equal(events.length, 1);
      assert.deepEqual([events[0].stage, events[0].errorCode, events[0].listener], ['greeting', 'ERR_SMTP_GREETING', 'unit']);
    });
  });

  test("no greeting at all: stage greeting, ERR_SMTP_TIMEOUT (the reader's code, kept as the cause)", async () => {
    await withServer(
      { answer: () => undefined },
      async (client, events) => {
        const err = await failure(client.greeting());
        assert.deepEqual([err.stage, err.code], ['greeting', 'ERR_SMTP_TIMEOUT']);
        assert.equal((err.cause as { code?: string }).code, 'ERR_SMTP_TIMEOUT');
        assert.deepEqual(
          events.map((e) => [e.stage, e.errorCode]),
          [['greeting', 'ERR_SMTP_TIMEOUT']],
        );
      },
      300,
    );
  });

  test('EHLO refused: HELO when allowed (no extensions), else stage ehlo, ERR_SMTP_PROTOCOL', async () => {
    const script: Script = {
      greeting: '220 mx.test ESMTP\r\n',
      answer: (l) => (l.startsWith('EHLO') ? '502 5.5.1 no\r\n' : '250 mx.test\r\n'),
    };
    await withServer(script, async (client, events) => {
      await client.greeting();
      await client.hello('tb.test', { heloFallback: true });
      assert.equal(client.extensions.size, 0);
      assert.equal(events.length, 0);
    });
    await withServer(script, async (client, events) => {
      await client.greeting();
      const err = await failure(client.hello('tb.test'));
      assert.deepEqual([err.stage, err.code, err.replyCode], ['ehlo', 'ERR_SMTP_PROTOCOL', 502]);
      assert.deepEqual(
        events.map((e) => e.stage),
        ['ehlo'],
      );
    });
  });

  test('EHLO name and extensions; STARTTLS not offered: stage starttls, ERR_NO_STARTTLS, nothing sent', async () => {
    await withServer({ greeting: '220 mx.test ESMTP\r\n', answer: ESMTP(['SIZE 1000', 'auth plain']) }, async (client, events) => {
      await client.greeting();
      await client.hello('tb.test');
      assert.equal(client.ehloName, 'mx.test');
      assert.deepEqual(
        [...client.extensions],
        [
          ['SIZE', '1000'],
          ['AUTH', 'plain'],
        ],
      );
      const sent = seen.length;
      const err = await failure(client.requestTls());
      assert.deepEqual([err.stage, err.code], ['starttls', 'ERR_NO_STARTTLS']);
      assert.equal(seen.length, sent, 'no STARTTLS went out');
      assert.deepEqual(
        events.map((e) => [e.stage, e.errorCode]),
        [['starttls', 'ERR_NO_STARTTLS']],
      );
    });
  });

  test('bytes after the 220 to STARTTLS: stage injection, ERR_STARTTLS_INJECTION; STARTTLS refused: ERR_STARTTLS_REFUSED', async () => {
    const ehlo = ESMTP(['STARTTLS']);
    const inject: Script = {
      greeting: '220 mx.test\r\n',
      answer: (l) => (l === 'STARTTLS' ? '220 go ahead\r\n250 AUTH PLAIN\r\n' : ehlo(l)),
    };
    await withServer(inject, async (client, events) => {
      await client.greeting();
      await client.hello('tb.test');
      const err = await failure(client.requestTls());
      assert.deepEqual([err.stage, err.code], ['injection', 'ERR_STARTTLS_INJECTION']);
      assert.doesNotMatch(events[0].error, /AUTH PLAIN/, 'the injected bytes are not logged');
    });
    const refuse: Script = { greeting: '220 mx.test\r\n', answer: (l) => (l === 'STARTTLS' ? '454 4.7.0 not now\r\n' : ehlo(l)) };
    await withServer(refuse, async (client) => {
      await client.greeting();
      await client.hello('tb.test');
      const err = await failure(client.requestTls());
      assert.deepEqual([err.stage, err.code, err.replyCode], ['starttls', 'ERR_STARTTLS_REFUSED', 454]);
    });
  });

  test('AUTH outside TLS: ERR_AUTH_NEEDS_TLS before any credential is sent; no upstream.error (a stage after TLS)', async () => {
    await withServer({ greeting: '220 mx.test\r\n', answer: ESMTP(['AUTH PLAIN LOGIN']) }, async (client, events) => {
      await client.greeting();
      await client.hello('tb.test');
      const credentials = { plain: () => 'c2VjcmV0', user64: () => 'dXNlcg==', password64: () => 'c2VjcmV0' };
      const err = await failure(client.authenticate(credentials));
      assert.deepEqual([err.stage, err.code], ['auth', 'ERR_AUTH_NEEDS_TLS']);
      assert.ok(!seen.some((l) => l.startsWith('AUTH')));
      assert.equal(events.length, 0);
    });
  });

  test('a server out of step (a reply nothing asked for): the next command fails with ERR_SMTP_OUT_OF_STEP, the connection is dropped', async () => {
    const script: Script = {
      greeting: '220 mx.test\r\n',
      answer: (l) => (l.startsWith('EHLO') ? '250 mx.test\r\n' : '250 ok\r\n250 ok again\r\n'),
    };
    await withServer(script, async (client) => {
      await client.greeting();
      await client.hello('tb.test');
      assert.equal((await client.command('NOOP')).code, 250);
      // The unasked reply arriving is the event: once it is read, the client is no longer in step.
      await until(() => !client.alive, 5000, 'the unasked reply');
      const err = await failure(client.command('RSET'));
      assert.deepEqual([err.stage, err.code], ['transaction', 'ERR_SMTP_OUT_OF_STEP']);
      assert.equal(client.closed, true);
    });
  });

  test("connection refused: stage connect, the audit line carries Node's own code", async () => {
    const audit = new AuditLog();
    const events: UpstreamErrorEvent[] = [];
    audit.on('event', (e) => {
      if (e.event === 'upstream.error') events.push(e);
    });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await failure(
      SmtpClient.connect('127.0.0.1', closedPort, {
        connectMs: 1000,
        replyMs: 300,
        report: { audit, listener: 'unit', cleartextFallback: true },
      }),
    );
    assert.deepEqual([err.stage, err.code], ['connect', 'ERR_UPSTREAM_CONNECT']);
    assert.deepEqual(
      events.map((e) => [e.stage, e.errorCode, e.destination, e.cleartextFallback]),
      [['connect', 'ECONNREFUSED', `127.0.0.1:${closedPort}`, true]],
    );
  });
});
