import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rcptDsn, wants } from '../../../src/smtp/dsn-params.js';
import { parseEnvelopeArg } from '../../../src/smtp/envelope.js';
import { buildDsn } from '../../../src/smtp/spool/dsn.js';

/** RFC 3461 parameters and what a notification makes of them, without a socket. */
describe('DSN parameters (RFC 3461)', () => {
  const rcpt = (arg: string) => {
    const p = parseEnvelopeArg(arg, 'TO');
    assert.ok(p.ok, arg);
    return rcptDsn(p.arg);
  };

  test('NOTIFY and ORCPT kept as the words received; NOTIFY read case-insensitively', () => {
    const d = rcpt('TO:<x@d.test> notify=Success,delay ORCPT=rfc822;x+2Bt@d.test');
    assert.ok(!('code' in d));
    assert.deepEqual(d, {
      words: ['notify=Success,delay', 'ORCPT=rfc822;x+2Bt@d.test'],
      notify: 'SUCCESS,DELAY',
      orcpt: 'rfc822;x+2Bt@d.test',
    });
    assert.equal(wants(d, 'SUCCESS'), true);
    assert.equal(wants(d, 'FAILURE'), false);
    // No NOTIFY: failures only (RFC 3461 4.1).
    assert.equal(wants(undefined, 'FAILURE'), true);
    assert.equal(wants(undefined, 'SUCCESS'), false);
    assert.equal(wants({ notify: 'NEVER' }, 'FAILURE'), false);
  });

  test('an xtext that decodes to a line break stays encoded in the notification (no header injection)', () => {
    const dsn = buildDsn({
      hostname: 'relay.test',
      to: 'a@client.test',
      arrived: 0,
      now: new Date(0),
      envid: 'id+0D+0AX-Injected:+201',
      headers: Buffer.from('Subject: s\r\n\r\n'),
      failed: [
        {
          address: 'x@d.test',
          state: 'relayed',
          reply: '250 2.0.0 Ok',
          by: 'mx.d.test[127.0.0.1]:25',
          attempts: 1,
          dsn: { words: [], orcpt: 'rfc822;x+0D+0AFake:+201' },
        },
      ],
    }).toString('latin1');
    assert.match(dsn, /^Original-Envelope-Id: id\+0D\+0AX-Injected:\+201\r$/m);
    assert.match(dsn, /^Original-Recipient: rfc822;x\+0D\+0AFake:\+201\r$/m);
    assert.match(dsn, /^Action: relayed\r$/m);
    assert.match(dsn, /^Status: 2\.0\.0\r$/m);
    assert.doesNotMatch(dsn, /^(X-Injected|Fake):/m);
  });
});
