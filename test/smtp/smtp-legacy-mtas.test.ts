import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { makeCert } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startExim, startOpenSmtpd, startSendmail, type LegacyMta } from '../support/legacy-mtas.js';
import { freeTcpPort } from '../support/ports.js';
import { startPostfix, tls13Destination, type Postfix } from '../support/postfix.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import { dial, sendMessage } from '../support/smtp-client.js';
import { fillExample, missingUnpacked } from '../support/unpacked-debs.js';

/**
 * Issue 12, every legacy MTA end to end with real programs: MESSAGES messages in through the MTA
 * (cleartext, with its config from examples/mta/), out through ticketbooth (mode relay, `encrypt`,
 * no connection cache: one upstream connection per message) over STARTTLS with TLS 1.3 to a
 * Postfix destination that delivers to a maildir and logs whether it resumed each session.
 * Messages go one at a time (the next once the last is delivered), so each connection after the
 * first can offer the ticket the one before it received: with the default `reuse: never` and
 * Postfix's one ticket per full handshake, that is every other connection.
 */
const MESSAGES = 10;

interface Chain {
  dest: Postfix;
  sh: Smarthost;
  stop(): Promise<void>;
}

/** The destination Postfix (STARTTLS, TLS 1.3 only, maildir for dest.test) and ticketbooth relaying to it. */
async function startChain(): Promise<Chain> {
  const cert = makeCert(['dest.test']);
  const destPort = await freeTcpPort();
  const dest = await startPostfix({
    smtpd: `127.0.0.1:${destPort}`,
    maildirDomains: ['dest.test'],
    main: {
      myhostname: 'mx.dest.test',
      ...tls13Destination(cert),
    },
  });
  try {
    const sh = await startSmarthost({
      route: { mode: 'relay', host: '127.0.0.1', port: destPort },
      tls: { level: 'encrypt' },
      connectionCache: { enabled: false },
    });
    return { dest, sh, stop: async () => (await sh.stop(), await dest.stop()) };
  } catch (err) {
    await dest.stop();
    throw err;
  }
}

const body = (id: string): string =>
  `From: sender@legacy.test\r\nTo: user@dest.test\r\nMessage-Id: <${id}@legacy.test>\r\nSubject: ${id}\r\n\r\nbody of ${id}\r\n`;

/** One message into a listening MTA over SMTP; resolves on its 250. */
async function inject(port: number, id: string): Promise<void> {
  const d = await dial(port);
  await d.cmd('EHLO injector.test');
  const sent = await sendMessage(d, 'sender@legacy.test', ['user@dest.test'], body(id));
  assert.equal(sent.final.code, 250, JSON.stringify(sent.replies));
  await d.cmd('QUIT');
  d.close();
}

/**
 * Sends MESSAGES messages with `send`, each once the one before is delivered, then asserts what the
 * destination saw: each Message-Id in exactly one maildir file, each over its own TLS 1.3
 * connection, and at least 40% of those resumed (`Reusing old session` in its log).
 */
async function sendAndCheck(t: TestContext, chain: Chain, name: string, send: (id: string) => Promise<void>, log: () => string) {
  const ids = Array.from({ length: MESSAGES }, (_, i) => `${name}-${i}-${process.pid}`);
  for (const [i, id] of ids.entries()) {
    await send(id);
    await chain.dest.waitForDelivered(i + 1, 20_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${name} log:\n${log().slice(-3000)}`, { cause: err });
    });
  }
  const seen = chain.dest.delivered().map((f) => /^Message-Id: <([^>]+)>/im.exec(readFileSync(f, 'utf8'))?.[1]);
  assert.deepEqual(seen.sort(), ids.map((id) => `${id}@legacy.test`).sort(), 'each message exactly once');

  await chain.dest.waitForLog(/TLS connection established from .*TLSv1\.3/, MESSAGES);
  const destLog = chain.dest.log();
  const tls = (destLog.match(/TLS connection established from/g) ?? []).length;
  const tls13 = (destLog.match(/TLS connection established from .*TLSv1\.3/g) ?? []).length;
  const resumed = (destLog.match(/Reusing old session/g) ?? []).length;
  t.diagnostic(`${name}: destination resumed ${resumed}/${tls} TLS connections`);
  assert.equal(tls13, tls, 'every connection to the destination is TLS 1.3');
  assert.equal(tls, MESSAGES, 'one TLS connection per message');
  assert.ok(resumed >= 0.4 * tls, `resumed ${resumed}/${tls}: at least 40%`);
  const tx = await chain.sh.waitForTransactions(MESSAGES);
  assert.equal(tx.length, MESSAGES);
  assert.ok(tx.every((e) => e.code === 250));
}

describe('msmtp → ticketbooth (relay, encrypt) → Postfix over TLS 1.3', { skip: missing('postfix', 'msmtp') }, () => {
  let chain: Chain;
  let dir: string;
  before(async () => {
    chain = await startChain();
    dir = mkdtempSync(join(tmpdir(), 'tb-msmtp-'));
  });
  after(async () => {
    await chain?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test(`${MESSAGES} messages, each delivered once; the destination resumed ≥ 40%`, async (t) => {
    const rc = join(dir, 'msmtprc');
    writeFileSync(rc, fillExample('msmtprc', { TICKETBOOTH_PORT: chain.sh.port }));
    chmodSync(rc, 0o600);
    const logFile = join(dir, 'msmtp.log');
    const log = (): string => readFileSync(logFile, { encoding: 'utf8', flag: 'a+' });
    await sendAndCheck(t, chain, 'msmtp', (id) => msmtp(rc, logFile, body(id)), log);
  });
});

/** `msmtp -C rc -- user@dest.test < message`: resolves when msmtp exits 0 (the smarthost said 250). */
function msmtp(rc: string, logFile: string, message: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('msmtp', ['-C', rc, `--logfile=${logFile}`, '--', 'user@dest.test'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`msmtp exited ${code}: ${out}`))));
    child.stdin.end(message.replace(/\r\n/g, '\n'));
  });
}

/** A daemon MTA (started by `start` on its own port, relaying to ticketbooth) with messages injected over SMTP. */
function daemonSuite(name: string, skip: string | undefined, start: (port: number, tbPort: number) => Promise<LegacyMta>): void {
  describe(`${name} → ticketbooth (relay, encrypt) → Postfix over TLS 1.3`, { skip }, () => {
    let chain: Chain;
    let mta: LegacyMta;
    before(async () => {
      chain = await startChain();
      mta = await start(await freeTcpPort(), chain.sh.port);
    });
    after(async () => {
      await mta?.stop();
      await chain?.stop();
    });

    test(`${MESSAGES} messages, each delivered once; the destination resumed ≥ 40%`, async (t) => {
      await sendAndCheck(
        t,
        chain,
        name,
        (id) => inject(mta.port, id),
        () => mta.log(),
      );
    });
  });
}

daemonSuite('Exim 4', missing('postfix') ?? missingUnpacked('exim4'), startExim);
daemonSuite('OpenSMTPD', missing('postfix', 'unshare') ?? missingUnpacked('smtpd'), startOpenSmtpd);
daemonSuite('sendmail', missing('postfix', 'm4', 'unshare') ?? missingUnpacked('sendmail', 'sendmail-cf'), startSendmail);

test('the docs show each examples/mta/ file exactly as the tests run it, in one place', () => {
  const section = (path: string, heading: string): string => {
    const text = readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
    assert.ok(text.includes(`\n${heading}\n`), `${path} has "${heading}"`);
    return text.slice(text.indexOf(`\n${heading}\n`)).split('\n## ')[1];
  };
  // The README shows Postfix's lines; docs/smarthost.md every other MTA's.
  const shown = [section('README.md', '## Point an MTA at it'), section('docs/smarthost.md', '## Pointing a legacy MTA at it')];
  for (const file of [
    'postfix-main.cf',
    'postfix-lmtp-main.cf',
    'exim4.conf',
    'exim4-lmtp-transport.conf',
    'smtpd.conf',
    'sendmail.mc',
    'msmtprc',
  ]) {
    const text = readFileSync(new URL(`../../examples/mta/${file}`, import.meta.url), 'utf8');
    const places = shown.filter((s) => s.includes('```\n' + text + '```\n')).length;
    assert.equal(
      places,
      1,
      `examples/mta/${file} is shown verbatim once (README "Point an MTA at it" or docs/smarthost.md "Pointing a legacy MTA at it")`,
    );
  }
});
