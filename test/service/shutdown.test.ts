import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { makeCert, type CertPair } from '../support/certs.js';
import { parseConfig } from '../../src/config/load.js';
import { Service } from '../../src/service/service.js';
import { missing } from '../support/interop.js';
import { startNodeTlsServer, type NodeTlsServer } from '../support/servers.js';
import { bundle } from '../../scripts/bundle.js';

/**
 * The real CLI process (`node --import tsx src/cli.ts serve -c FILE`) on SIGTERM/SIGINT: stops
 * accepting, lets an open session finish (up to the timeout), then exits 0.
 */

interface Cli {
  child: ChildProcess;
  port: number;
  /** Resolves when stdout+stderr match. */
  waitFor(re: RegExp): Promise<RegExpMatchArray>;
  exit: Promise<number | null>;
}

/** How the CLI is started: through tsx (default), or `npm start` with the config appended. */
type Launcher = (config: string) => [string, string[]];
const viaTsx: Launcher = (config) => [process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '-c', config]];

async function startCli(server: NodeTlsServer, cert: CertPair, shutdownTimeoutSeconds: number, launch = viaTsx): Promise<Cli> {
  const dir = mkdtempSync(join(tmpdir(), 'tb-shutdown-'));
  const config = join(dir, 'ticketbooth.yaml');
  writeFileSync(
    config,
    [
      'listeners:',
      '  - name: tun',
      '    type: tunnel',
      '    listen: 127.0.0.1:0',
      '    upstream:',
      `      host: ${server.host}`,
      `      port: ${server.port}`,
      '      servername: localhost',
      `      ca: ${cert.certFile}`,
      'audit:',
      '  file: "-"',
      `shutdownTimeoutSeconds: ${shutdownTimeoutSeconds}`,
      '',
    ].join('\n'),
  );
  const [command, args] = launch(config);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (c: Buffer): void => {
    out += c.toString();
    for (const w of [...waiters]) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitFor = (re: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const m = re.exec(out);
        if (m) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no ${re} within ${timeoutMs} ms; output:\n${out}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  const m = await waitFor(/tun listening on 127\.0\.0\.1:(\d+)/);
  return { child, port: Number(m[1]), waitFor, exit };
}

/** Opens a session through the tunnel; `RECV n` keeps it open until n bytes went up. */
function openSession(port: number): Promise<{ socket: Socket; reply: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    const reply = new Promise<string>((r) => socket.once('close', () => r(text)));
    socket.once('error', reject);
    socket.once('connect', () => resolve({ socket, reply }));
  });
}

/** True when nothing listens on the port any more. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

/**
 * A new client after the signal is not served: refused, or (if its SYN beat the close into the
 * kernel's backlog) reset without a byte. Either way nothing reaches the upstream.
 */
function notServed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = 0;
    s.on('data', (c: Buffer) => (got += c.length));
    s.once('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.on('error', () => undefined);
    s.once('close', () => resolve(got === 0));
  });
}

describe('shutdown of the real CLI process', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  before(() => {
    cert = makeCert(['localhost']);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal}: stops accepting, lets the open session finish, exits 0`, async () => {
      const server = await startNodeTlsServer({ cert });
      const cli = await startCli(server, cert, 30);
      try {
        const { socket, reply } = await openSession(cli.port);
        socket.write('RECV 10\nhello');
        await cli.waitFor(/"event":"tls\.handshake"/); // the session is through to the server
        cli.child.kill(signal);
        await cli.waitFor(new RegExp(`${signal}: draining`));
        assert.equal(await notServed(cli.port), true, 'no new connection is served');
        assert.equal(cli.child.exitCode, null, 'still running while a session is open');
        socket.end('world');
        assert.equal(await reply, 'OK\n', 'the open session completed');
        assert.equal(await cli.exit, 0);
        assert.equal(server.stats.handshakes, 1, 'only the open session reached the server');
      } finally {
        cli.child.kill('SIGKILL');
        await server.stop();
      }
    });
  }

  test('npm start: SIGTERM to npm reaches the proxy, which drains and exits; nothing is left listening', async () => {
    // `npm start` runs the built CLI (`exec node dist/src/cli.js`); --ignore-scripts skips the prestart build.
    if (!existsSync('dist/src/cli.js')) await bundle();
    const server = await startNodeTlsServer({ cert });
    const cli = await startCli(server, cert, 30, (config) => ['npm', ['start', '--ignore-scripts', '--', '--config', config]]);
    try {
      cli.child.kill('SIGTERM');
      await cli.waitFor(/SIGTERM: draining/);
      await cli.exit;
      assert.equal(await refused(cli.port), true, 'the proxy is gone, not re-parented and still bound');
    } finally {
      cli.child.kill('SIGKILL');
      await server.stop();
    }
  });

  test('a second signal while draining exits at once with 1, without waiting for the open session', async () => {
    const server = await startNodeTlsServer({ cert });
    const cli = await startCli(server, cert, 30);
    try {
      const { socket } = await openSession(cli.port);
      socket.write('RECV 10\nhello');
      await cli.waitFor(/"event":"tls\.handshake"/);
      cli.child.kill('SIGTERM');
      await cli.waitFor(/SIGTERM: draining/);
      cli.child.kill('SIGINT');
      await cli.waitFor(/SIGINT again: exiting/);
      assert.equal(await cli.exit, 1, 'well before the 30 s shutdown timeout');
      socket.destroy();
    } finally {
      cli.child.kill('SIGKILL');
      await server.stop();
    }
  });

  test('a session that does not finish is cut at shutdownTimeoutSeconds, and the exit is still 0', async () => {
    const server = await startNodeTlsServer({ cert });
    const cli = await startCli(server, cert, 1);
    try {
      const { socket, reply } = await openSession(cli.port);
      socket.write('RECV 10\nhello');
      await cli.waitFor(/"event":"tls\.handshake"/);
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exit, 0);
      assert.equal(await reply, '', 'the unfinished session was closed without an answer');
    } finally {
      cli.child.kill('SIGKILL');
      await server.stop();
    }
  });
});

describe('Service.stop', () => {
  test('a second stop (a second signal) waits for the first instead of hanging', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tb-stop2-'));
    const auditFile = join(dir, 'audit.jsonl');
    const config = parseConfig(
      `listeners: [{ name: t, type: tunnel, listen: "127.0.0.1:0", upstream: { host: 127.0.0.1, port: 9 } }]\naudit: { file: ${JSON.stringify(auditFile)} }\n`,
    );
    const service = await Service.start(config);
    const port = service.addressOf('t').port;
    await service.stop(1000);
    const both = service.stop(1000); // after the first has finished: its 'finish' event is gone
    const outcome = await Promise.race([both.then(() => 'stopped'), new Promise((r) => setTimeout(r, 5000, 'hung')).then(() => 'hung')]);
    assert.equal(outcome, 'stopped');
    const refused = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', () => resolve(true));
    });
    assert.equal(refused, true, 'the listener no longer accepts');
  });
});
