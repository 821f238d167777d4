import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { buildDsn, headerSection } from '../../../src/smtp/spool/dsn.js';
import type { SpoolEntry } from '../../../src/smtp/spool/entry.js';
import { SpoolStore } from '../../../src/smtp/spool/store.js';

describe('spool store: the entry is the commit point', () => {
  const entry = (id: string): SpoolEntry => ({
    version: 1,
    id,
    listener: 'sh',
    created: 1,
    from: 'a@client.test',
    smtputf8: false,
    recipients: [{ address: 'y@d2.test', state: 'failed', reply: '554 5.7.1 no', by: 'mx[127.0.0.1]:25', attempts: 1 }],
    nextAttempt: 1,
    notified: false,
  });

  test('a committed body survives the sweep; a body without an entry and a half-written entry do not', async () => {
    const store = new SpoolStore(mkdtempSync(join(tmpdir(), 'tb-spool-unit-')));
    const kept = await store.newBody();
    await kept.write(Buffer.from('Subject: kept\r\n\r\n..dot\r\n'));
    await store.commit(entry(kept.id), kept);
    const stray = await store.newBody();
    await stray.write(Buffer.from('Subject: stray\r\n'));
    await stray.close(false);
    writeFileSync(join(store.dir, 'x.json.tmp'), '{');
    assert.equal(await store.sweep(), 2);
    assert.deepEqual(readdirSync(store.dir).sort(), [`${kept.id}.eml`, `${kept.id}.json`]);
    assert.deepEqual((await store.list()).entries, [entry(kept.id)]);
    await store.remove(kept.id);
    assert.deepEqual(readdirSync(store.dir), []);
    assert.equal(await store.read(kept.id), undefined);
  });
});

describe('delivery status notification (RFC 3464)', () => {
  test('one block per failed recipient, its hop and reply; the original headers unstuffed', () => {
    const headers = headerSection(Buffer.from('Subject: hi\r\n..Odd: header-ish\r\nMessage-Id: <m@x>\r\n\r\n..body\r\n', 'latin1'));
    assert.equal(headers.toString('latin1'), 'Subject: hi\r\n.Odd: header-ish\r\nMessage-Id: <m@x>\r\n');
    const dsn = buildDsn({
      hostname: 'tb.test',
      to: 'a@client.test',
      arrived: Date.UTC(2026, 11, 7),
      now: new Date(Date.UTC(2026, 11, 7, 0, 1)),
      failed: [
        { address: 'y@d2.test', state: 'failed', reply: '554 5.7.1 refused', by: 'mx.d2.test[127.0.0.1]:25', attempts: 1 },
        { address: 'z@d3.test', state: 'failed', reply: '451 try later', by: 'mx.d3.test[127.0.0.1]:25', attempts: 9 },
      ],
      headers,
    }).toString('latin1');
    assert.match(dsn, /^Content-Type: multipart\/report; report-type=delivery-status; boundary="/m);
    assert.match(dsn, /^To: <a@client\.test>$/m);
    assert.match(dsn, /Final-Recipient: rfc822; y@d2\.test\r\nAction: failed\r\nStatus: 5\.7\.1\r\nRemote-MTA: dns; mx\.d2\.test\r\n/);
    // A temporary failure without an enhanced code that ran out of time: 4.4.7 (delivery time expired).
    assert.match(dsn, /Final-Recipient: rfc822; z@d3\.test\r\nAction: failed\r\nStatus: 4\.4\.7\r\n/);
    assert.match(dsn, /Content-Type: text\/rfc822-headers\r\n\r\nSubject: hi\r\n\.Odd/);
    assert.equal(dsn.match(/Final-Recipient/g)?.length, 2);
  });
});
