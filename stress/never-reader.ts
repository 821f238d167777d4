import { connect, type Socket } from 'node:net';
import type { Figure } from '../bench/section.js';
import type { FaultServer } from '../test/support/smtp-fault-server.js';
import { smtpListener } from './config.js';
import { deliver } from './deliver.js';
import { Ledger } from './ledger.js';
import { median } from './memory.js';
import { settled } from './pool.js';
import { mib, resetPeak } from '../test/support/proc-memory.js';
import { startTicketbooth } from './ticketbooth.js';
import { check, clean, summary } from './verdict.js';
import { sourceAddress } from './wire.js';

/** Issue 8 check 1's limits: growth under the flood, and distance from the start 10 s after the close. */
const GROWTH_LIMIT = 32;
const RETURN_LIMIT = 10;
/** The flood writes for at most this long: a server that stops reading (the fix) never drains it. */
const WRITE_MS = 90_000;
/** As in the issue's reproduction: the client stays connected this long after its last write. */
const HOLD_MS = 8000;
const AFTER_CLOSE_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One client pipelines `mibTotal` MiB of `EHLO x\r\n` and never reads a reply; meanwhile another
 * client delivers a message every second. RSS growth during the flood, RSS 10 s after the flood's
 * close, and whether every other client was answered.
 */
export async function runNeverReader(
  sink: FaultServer,
  mibTotal: number,
  built?: boolean,
): Promise<{ lines: string[]; figures: Record<string, Figure>; ok: boolean }> {
  const tb = await startTicketbooth({ listeners: [smtpListener('flood', sink.port)] }, { built });
  const ledger = new Ledger();
  try {
    const port = tb.port('flood');
    for (let i = 0; i < 20; i++) await deliver(port, ledger, 'warm', i);
    await sleep(3000);
    const start = median([0, 1, 2].map(() => tb.rss().rss));
    const peakFromKernel = resetPeak(tb.pid);
    let sampledPeak = start;
    const sampler = setInterval(() => (sampledPeak = Math.max(sampledPeak, tb.rss().rss)), 250);

    // The other client: one message a second, on its own connection, all through the flood.
    const probes: Array<{ accepted: number; ms: number }> = [];
    let probing = true;
    const prober = (async () => {
      for (let k = 0; probing; k++) {
        const t = Date.now();
        probes.push(await deliver(port, ledger, 'probe', 2000 + k));
        await sleep(Math.max(0, 1000 - (Date.now() - t)));
      }
    })();

    const floodStart = Date.now();
    const { socket, chunks, written } = await flood(port, mibTotal);
    const writeSeconds = (Date.now() - floodStart) / 1000;
    await sleep(HOLD_MS);
    const peakBeforeClose = Math.max(sampledPeak, peakFromKernel ? tb.rss().hwm : 0);
    socket.destroy();
    await sleep(AFTER_CLOSE_MS);
    const after = tb.rss().rss;
    probing = false;
    await prober;
    clearInterval(sampler);
    const peak = Math.max(peakBeforeClose, sampledPeak);
    await settled(() => sink.stored.length, 500, 5000);
    // The sink is shared with the steady run: only this part's messages count here.
    const verdict = check(
      ledger,
      sink.stored.filter((m) => /Message-Id: <(warm|probe)\./.test(m.body.toString('latin1'))),
    );
    const crashed = tb.crashed();
    const answered = probes.filter((p) => p.accepted === 1).length;
    const slowest = Math.max(...probes.map((p) => p.ms));
    const growth = peak - start;
    const back = after - start;
    const ok = growth < GROWTH_LIMIT && back < RETURN_LIMIT && answered === probes.length && !crashed && clean(verdict);
    const lines = [
      `never-reading client: ${(written / 1048576).toFixed(1)} of ${mibTotal} MiB of pipelined "EHLO x" taken by the server in ${writeSeconds.toFixed(1)} s (${chunks} writes of 64 KiB${written < mibTotal * 1048576 ? '; it stopped reading: back-pressure' : ''}), held ${HOLD_MS / 1000} s, closed`,
      `  RSS: ${mib(start)} before, peak ${mib(peak)} (${peakFromKernel ? 'VmHWM reset at the start' : 'sampled every 250 ms'}): growth ${mib(growth)} — ${growth < GROWTH_LIMIT ? 'within' : 'OVER'} the ${GROWTH_LIMIT} MiB limit`,
      `  RSS ${AFTER_CLOSE_MS / 1000} s after the close: ${mib(after)}, ${mib(back)} above the start — ${back < RETURN_LIMIT ? 'within' : 'OVER'} the ${RETURN_LIMIT} MiB limit`,
      `  another client meanwhile: ${answered}/${probes.length} messages delivered, slowest ${(slowest / 1000).toFixed(1)} s; sink: ${summary(verdict)}`,
      `  ticketbooth: ${crashed ? `CRASHED: ${crashed}` : 'no crash'}`,
    ];
    return {
      lines,
      ok,
      figures: {
        neverReaderGrowthMiB: { value: growth, unit: 'MiB', goal: `< ${GROWTH_LIMIT}`, met: growth < GROWTH_LIMIT },
        neverReaderAfterCloseMiB: { value: back, unit: 'MiB above start', goal: `< ${RETURN_LIMIT}`, met: back < RETURN_LIMIT },
        othersAnswered: { value: answered, unit: `of ${probes.length}`, goal: 'all', met: answered === probes.length },
      },
    };
  } finally {
    await tb.stop();
  }
}

/** Writes 64 KiB chunks of `EHLO x\r\n` while the server takes them, up to the total or WRITE_MS. */
async function flood(port: number, mibTotal: number): Promise<{ socket: Socket; chunks: number; written: number }> {
  const socket = connect({ host: '127.0.0.1', port, localAddress: sourceAddress(249) });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.pause(); // never reads a byte
  const chunk = Buffer.from('EHLO x\r\n'.repeat(8192));
  const total = mibTotal * 16;
  let chunks = 0;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, WRITE_MS);
    const write = (): void => {
      while (chunks < total) {
        chunks++;
        if (!socket.write(chunk)) {
          socket.once('drain', write);
          return;
        }
      }
      clearTimeout(timer);
      resolve();
    };
    write();
  });
  return { socket, chunks, written: chunks * chunk.length - socket.writableLength };
}
