import { FUZZ_MAX_MESSAGE, type FuzzKind } from './fuzz-kind.js';
import type { Rng } from './rng.js';
import type { Session } from './session.js';
import type { Tx } from './transaction.js';
import type { Heard } from './wire.js';

/**
 * Bad and tricky input inside DATA. Bare LF/CR is fatal (521, close, no dot upstream: the SMTP
 * smuggling shapes); NUL, an overlong line and an oversized message spoil only that message (5xx,
 * the session goes on); everything else must arrive byte for byte.
 */

/** End-of-data lookalikes that lenient servers take for the real one. */
const SMUGGLE_SHAPES = ['\n.\n', '\r\n.\n', '\n.\r\n', '\r.\r\n', '\r\n.\r', '\r.\r', '\n..\n'];

/** Cuts the bytes into writes of 1..max bytes (line ends and the final dot may straddle two). */
export function randomSplit(rng: Rng, max: number): (wire: Buffer) => Buffer[] {
  return (wire) => {
    const out: Buffer[] = [];
    for (let at = 0; at < wire.length;) {
      const n = rng.int(1, max);
      out.push(wire.subarray(at, at + n));
      at += n;
    }
    return out;
  };
}

const finalOf = (r: Awaited<ReturnType<Session['send']>>): Heard => r.final ?? r.data ?? r.rcpts.at(-1) ?? r.mail;

/** One message with `lines`; the final reply must match; `then`: the session's next step. */
function oneMessage(
  name: string,
  build: (s: Session) => Partial<Tx> & { lines?: Array<string | Buffer> },
  want: RegExp,
  then: 'go-on' | 'closed',
): FuzzKind {
  return {
    name,
    async run(s) {
      const w = await s.ready();
      const over = build(s);
      if (s.rng.chance(0.3)) over.split ??= randomSplit(s.rng, 200);
      const r = await s.send(w, s.tx(over));
      s.expect(name, finalOf(r), want);
      if (then === 'closed') {
        if (!(await w.waitClosed(s.closeWaitMs))) s.expect(`${name}: close after the reply`, 'timeout', /^closed$/);
        return w.close();
      }
      await s.sendValid(w);
      await s.quit(w);
    },
  };
}

const smuggle: FuzzKind = {
  name: 'smuggling',
  async run(s) {
    const w = await s.ready();
    const inner = s.newId();
    s.ledger.never(inner, 'smuggling (inner)', s.index);
    const shape = s.rng.pick(SMUGGLE_SHAPES);
    const hidden = `before${shape}MAIL FROM:<smuggler@evil.test>\r\nRCPT TO:<victim@dest.test>\r\nDATA\r\nMessage-Id: <${inner}>\r\nSubject: smuggled\r\n\r\nsmuggled`;
    const tx = s.tx({ lines: [Buffer.from(hidden)], raw: true });
    if (s.rng.chance(0.5)) tx.split = randomSplit(s.rng, 16);
    const r = await s.send(w, tx);
    s.expect(`smuggling shape ${JSON.stringify(shape)}`, finalOf(r), /^521 5\.5\.2/);
    if (!(await w.waitClosed(s.closeWaitMs))) s.expect('close after 521', 'timeout', /^closed$/);
    w.close();
  },
};

function line(rng: Rng, len: number): string {
  let s = '';
  while (s.length < len) s += `${rng.word(1, 12)} `;
  return s.slice(0, len);
}

/** Bytes 0x01-0xff but CR and LF: 8-bit text, valid UTF-8 or not. */
function eightBitLine(rng: Rng): Buffer {
  return Buffer.from(rng.bytes(rng.int(0, 200)).map((b) => (b === 0 || b === 0x0a || b === 0x0d ? 0xe9 : b)));
}

const DOT_LINES = ['.', '..', '...', '.x', '. ', ' .', 'x.', '.\t', '..x', '', '.\u00e9'];

export const dataKinds: FuzzKind[] = [
  smuggle,
  oneMessage('bare-lf-in-body', (s) => ({ lines: [s.rng.pick(['abc\ndef', '\n', 'end\n'])] }), /^521 5\.5\.2/, 'closed'),
  oneMessage('bare-cr-in-body', (s) => ({ lines: [s.rng.pick(['abc\rdef', '\r', 'end\r'])] }), /^521 5\.5\.2/, 'closed'),
  oneMessage('nul-in-body', (s) => ({ lines: [`a${'\0'.repeat(s.rng.int(1, 3))}b`] }), /^554 5\.6\.0/, 'go-on'),
  oneMessage('overlong-body-line', (s) => ({ lines: ['ok', line(s.rng, s.rng.int(999, 20_000))] }), /^554 5\.6\.0/, 'go-on'),
  oneMessage('longest-body-line', (s) => ({ lines: [line(s.rng, 998), line(s.rng, s.rng.int(900, 998))] }), /^250 /, 'go-on'),
  oneMessage(
    'oversized-message',
    (s) => ({ lines: Array.from({ length: Math.ceil(FUZZ_MAX_MESSAGE / 900) + s.rng.int(1, 60) }, () => line(s.rng, 900)) }),
    /^552 5\.3\.4/,
    'go-on',
  ),
  oneMessage('dot-stuffing', (s) => ({ lines: Array.from({ length: s.rng.int(1, 30) }, () => s.rng.pick(DOT_LINES)) }), /^250 /, 'go-on'),
  oneMessage(
    'eight-bit-body',
    (s) => ({
      params: s.rng.chance(0.7) ? ['BODY=8BITMIME'] : [],
      lines: Array.from({ length: s.rng.int(1, 40) }, () => eightBitLine(s.rng)),
    }),
    /^250 /,
    'go-on',
  ),
  oneMessage(
    'chunked-writes',
    (s) => ({
      lines: Array.from({ length: s.rng.int(1, 20) }, () => s.rng.pick([...DOT_LINES, line(s.rng, 80)])),
      split: randomSplit(s.rng, 7),
    }),
    /^250 /,
    'go-on',
  ),
  oneMessage('pipelined-transaction', () => ({ pipelined: true }), /^250 /, 'go-on'),
  {
    name: 'dot-quit-half-close',
    async run(s) {
      const w = await s.ready();
      // Postfix-like: the dot and QUIT in one write, maybe then a FIN; both replies must still arrive.
      const r = await s.send(w, s.tx({ after: Buffer.from('QUIT\r\n'), halfClose: s.rng.chance(0.5) }));
      s.expect('reply to the dot', finalOf(r), /^250 /);
      s.expect('reply to QUIT', await w.read(), /^221 /);
      w.close();
    },
  },
];
