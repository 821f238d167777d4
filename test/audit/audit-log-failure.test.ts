import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { AuditLog } from '../../src/audit/audit-log.js';
import { parseConfig } from '../../src/config/load.js';
import { Service } from '../../src/service/service.js';

/** A failing audit file must not stop the proxy: lines are dropped, events still flow, shutdown ends. */
describe('audit log on a failing file', () => {
  test(
    'a full disk (/dev/full): every event still reaches subscribers and close() resolves',
    { skip: existsSync('/dev/full') ? false : 'needs /dev/full' },
    async () => {
      const audit = new AuditLog({ file: '/dev/full' });
      let heard = 0;
      audit.on('event', () => heard++);
      for (let i = 0; i < 2000; i++) {
        audit.record({ event: 'client.refused', listener: 'l', client: `127.0.0.1:${i}`, reason: 'allow-list' });
      }
      assert.equal(heard, 2000);
      const outcome = await Promise.race([audit.close().then(() => 'closed'), new Promise((r) => setTimeout(r, 5000, 'hung'))]);
      assert.equal(outcome, 'closed');
    },
  );

  test('an audit file that cannot be opened fails the start and names audit.file and the path', async () => {
    const config = parseConfig(
      'listeners: [{ name: t, type: tunnel, listen: "127.0.0.1:0", upstream: { host: 127.0.0.1, port: 9 } }]\naudit: { file: /nonexistent-dir/audit.jsonl }\n',
    );
    await assert.rejects(Service.start(config), /audit\.file \/nonexistent-dir\/audit\.jsonl: cannot open: ENOENT/);
  });
});
