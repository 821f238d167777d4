import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { missing } from '../support/interop.js';
import { freeTcpPort } from '../support/ports.js';
import { startPostfix, type Postfix } from '../support/postfix.js';
import { RawTlsmgrClient } from '../support/tlsmgr-client.js';

/**
 * `ticketbooth tlsmgr` as an operator starts it, beside a Postfix instance: the socket is
 * Postfix's (owner postfix, mode 0600), and what ticketbooth does not own goes to that instance's
 * real tlsmgr(8) and comes back unchanged: the smtpd cache policy and the RFC 5077 ticket keys
 * that inbound TLS needs.
 */
describe('ticketbooth tlsmgr (the command) forwarding to a real tlsmgr', { skip: missing('postfix') }, () => {
  let postfix: Postfix;
  let child: ChildProcess;
  let socket: string;
  let stderr = '';
  let stdout = '';

  before(async () => {
    postfix = await startPostfix({ smtpd: `127.0.0.1:${await freeTcpPort()}`, main: { tlsmgr_service_name: 'ticketbooth' } });
    const priv = join(postfix.dir, 'queue', 'private');
    socket = join(priv, 'ticketbooth');
    child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'tlsmgr', '--socket', socket, '--forward', join(priv, 'tlsmgr'), '--audit-log', '-'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 15_000;
    while (!stderr.includes('tlsmgr listening')) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`ticketbooth tlsmgr did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  after(async () => {
    if (child?.exitCode === null) child.kill('SIGKILL');
    await postfix?.stop();
  });

  test("the socket is Postfix's: owned by the postfix user, mode 0600", () => {
    const st = statSync(socket);
    const postfixUid = Number(
      readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('postfix:'))
        ?.split(':')[2],
    );
    assert.equal(st.uid, postfixUid);
    assert.equal(st.mode & 0o777, 0o600);
  });

  test('smtpd policy and ticket keys come from the real tlsmgr, unchanged', async () => {
    const c = await RawTlsmgrClient.open(socket);
    assert.equal((await c.next())?.get('protocol'), 'tlsmgr_protocol');
    const policy = await c.request([
      ['request', 'policy'],
      ['cache_type', 'smtpd'],
    ]);
    // tlsmgr's own answer: no smtpd database here, and its smtpd_tls_session_cache_timeout (3600 s).
    assert.deepEqual(
      [...(policy ?? [])],
      [
        ['status', '0'],
        ['cachable', '0'],
        ['timeout', '3600'],
      ],
    );
    const key = await c.request([
      ['request', 'tktkey'],
      ['keyname', ''],
    ]);
    assert.equal(key?.get('status'), '0', 'a current ticket key');
    assert.ok(Buffer.from(key?.get('keybuf') ?? '', 'base64').length > 32);
    const again = await c.request([
      ['request', 'tktkey'],
      ['keyname', ''],
    ]);
    assert.equal(again?.get('keybuf'), key?.get('keybuf'), 'the same key twice: it is tlsmgr that holds it');
    const seed = await c.request([
      ['request', 'seed'],
      ['size', '16'],
    ]);
    assert.equal(Buffer.from(seed?.get('seed') ?? '', 'base64').length, 16);
    c.close();
    assert.ok(!stdout.includes(key?.get('keybuf') ?? 'x'), 'no key in the audit log');
  });

  test('SIGTERM: exits 0 and removes the socket', async () => {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.ok(!existsSync(socket));
  });
});
