/**
 * Bytes per second through a tunnel beside a direct TLS connection to the same Node TLS server,
 * alternating runs: download (`SEND n`) and upload (`RECV n`). Server, ticketbooth (the CLI's
 * `tunnel` command, as shipped) and client each run in their own process, as they would in use:
 * the direct client does the TLS work itself, the tunnelled one leaves it to ticketbooth.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { makeCert } from '../test/support/certs.js';
import { missing } from '../test/support/interop.js';
import { startProcess } from '../test/support/process.js';
import { median, table, type Figure, type Section } from './section.js';

const MIB = 1024 * 1024;
const path = (rel: string): string => fileURLToPath(new URL(rel, import.meta.url));
const SIZE = 64 * MIB;
const RUNS = 5;

/** Runs one transfer on a connected socket; resolves with MB/s (10^6 bytes) from connect to close. */
function transfer(socket: Socket, ready: 'connect' | 'secureConnect', started: number, direction: 'down' | 'up'): Promise<number> {
  return new Promise((resolve, reject) => {
    let got = 0;
    socket.on('data', (c: Buffer) => (got += c.length));
    socket.on('error', reject);
    socket.on('close', () => {
      const seconds = (performance.now() - started) / 1000;
      if (direction === 'down' && got !== SIZE) return reject(new Error(`got ${got} of ${SIZE} bytes`));
      resolve(SIZE / seconds / 1e6);
    });
    const go = (): void => {
      if (direction === 'down') {
        socket.write(`SEND ${SIZE}\n`);
        return;
      }
      socket.write(`RECV ${SIZE}\n`);
      const chunk = Buffer.alloc(256 * 1024, 0x62);
      let left = SIZE;
      const pump = (): void => {
        while (left > 0) {
          left -= chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    };
    socket.once(ready, go);
  });
}

function viaTunnel(port: number, direction: 'down' | 'up'): Promise<number> {
  const started = performance.now();
  return transfer(connectTcp({ host: '127.0.0.1', port }), 'connect', started, direction);
}

function direct(host: string, port: number, ca: string, direction: 'down' | 'up'): Promise<number> {
  const started = performance.now();
  return transfer(connectTls({ host, port, servername: 'localhost', ca }), 'secureConnect', started, direction);
}

export async function run(): Promise<Section> {
  const name = `Throughput: ${SIZE / MIB} MiB through a tunnel vs direct TLS (MB/s, median of ${RUNS})`;
  const skip = missing('openssl');
  if (skip) return { name, lines: [`skipped: ${skip}`] };
  const cert = makeCert(['localhost']);
  const server = await startProcess(process.execPath, ['--import', 'tsx', path('./tls-server-main.ts'), cert.certFile, cert.keyFile], {
    ready: /listening on (\d+)/,
  });
  const serverPort = Number(server.ready[1]);
  const tunnel = await startProcess(
    process.execPath,
    [
      '--import',
      'tsx',
      path('../src/cli.ts'),
      'tunnel',
      '--listen',
      '127.0.0.1:0',
      '--connect',
      `127.0.0.1:${serverPort}`,
      '--servername',
      'localhost',
      '--ca',
      cert.certFile,
    ],
    { ready: /listening on 127\.0\.0\.1:(\d+)/ },
  );
  const tunnelPort = Number(tunnel.ready[1]);
  const r = { down: { tunnel: [] as number[], direct: [] as number[] }, up: { tunnel: [] as number[], direct: [] as number[] } };
  try {
    for (let i = 0; i < RUNS; i++) {
      for (const d of ['down', 'up'] as const) {
        r[d].direct.push(await direct('127.0.0.1', serverPort, cert.cert, d));
        r[d].tunnel.push(await viaTunnel(tunnelPort, d));
      }
    }
  } finally {
    await tunnel.stop();
    await server.stop();
  }
  const figures: Record<string, Figure> = {};
  const rows = (['down', 'up'] as const).map((d) => {
    const t = median(r[d].tunnel);
    const x = median(r[d].direct);
    figures[`${d}TunnelMBps`] = { value: t, unit: 'MB/s' };
    figures[`${d}DirectMBps`] = { value: x, unit: 'MB/s' };
    figures[`${d}Ratio`] = { value: t / x, unit: 'ratio tunnel/direct' };
    return [d === 'down' ? 'download (server to client)' : 'upload (client to server)', t.toFixed(0), x.toFixed(0), (t / x).toFixed(2)];
  });
  return { name, lines: table(['direction', 'tunnel', 'direct TLS', 'tunnel/direct'], rows), figures };
}
