import { FUZZ_MAX_MESSAGE, type FuzzKind } from './fuzz-kind.js';
import type { Rng } from './rng.js';
import type { Session } from './session.js';
import { codeOf, type Heard, type Wire } from './wire.js';

/**
 * Bad input in the command phase: line ends, NUL, length, envelope encodings, order, garbage.
 * Each expectation is the documented one (README, "The cleartext side" and "Relaying without loss").
 */

/** Byte sequences that are not UTF-8: lone continuation, overlong, truncated, surrogate, past U+10FFFF, 0xFF. */
const NOT_UTF8 = [[0xff, 0xfe], [0x80], [0xc0, 0xaf], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc3]].map((b) =>
  Buffer.from(b),
);
const UTF8_LOCAL = ['josé', 'müller', '用户', 'пользователь', 'δοκιμή', 'ñandú', 'x😀y'];
const UTF8_DOMAIN = ['exämple.test', '例子.test', 'dömäin.test', 'пример.test'];

function invalidAddress(rng: Rng, domain: string): Buffer {
  return Buffer.concat([Buffer.from(rng.word(1, 6)), rng.pick(NOT_UTF8), Buffer.from(rng.word(0, 4)), Buffer.from(`@${domain}`)]);
}

async function ask(w: Wire, bytes: string | Buffer): Promise<Heard> {
  await w.write(bytes);
  return w.read();
}

/** A bad command line gets 500 5.5.2, and the session goes on. */
function badLine(name: string, lines: (rng: Rng) => Array<string | Buffer>): FuzzKind {
  return {
    name,
    async run(s) {
      const w = await s.ready();
      const variant = s.rng.pick(lines(s.rng));
      s.expect(name, await ask(w, variant), /^500 5\.5\.2/);
      await s.sendValid(w);
      await s.quit(w);
    },
  };
}

/** A non-ASCII address, valid UTF-8 or not, in MAIL or RCPT, with or without SMTPUTF8. */
function utf8Address(name: string, valid: boolean, smtputf8: boolean): FuzzKind {
  return {
    name,
    async run(s) {
      const w = await s.ready();
      const inMail = s.rng.chance(0.5);
      const odd = valid
        ? Buffer.from(`${s.rng.pick(UTF8_LOCAL)}@${s.rng.pick(UTF8_DOMAIN)}`)
        : invalidAddress(s.rng, inMail ? 'client.test' : 'dest.test');
      const tx = s.tx({ params: smtputf8 ? ['SMTPUTF8'] : [], lines: valid ? [`Grüße, ${odd.toString()}`] : undefined });
      if (inMail) tx.from = odd;
      else tx.rcpts = [odd];
      const r = await s.send(w, tx);
      // Valid with SMTPUTF8: relayed as is. Otherwise refused (RFC 6531 3.6: 553 5.6.7), never rewritten.
      const step = inMail ? r.mail : r.rcpts[0];
      if (valid && smtputf8) s.expect(`${name} delivery`, r.final ?? step, /^250 /);
      else s.expect(`${name} in ${inMail ? 'MAIL' : 'RCPT'}`, step, valid ? /^553 5\.6\.7/ : /^(553 5\.6\.7|501 )/);
      if (codeOf(r.mail) === 250 && !r.final) await ask(w, 'RSET\r\n');
      await s.sendValid(w);
      await s.quit(w);
    },
  };
}

const outOfOrder: FuzzKind = {
  name: 'out-of-order',
  async run(s) {
    const w = await s.connect();
    const maybe = (): boolean => s.rng.chance(0.7);
    if (maybe()) s.expect('MAIL before EHLO', await ask(w, 'MAIL FROM:<a@client.test>\r\n'), /^503 5\.5\.1/);
    s.expect('EHLO', await ask(w, 'EHLO client.test\r\n'), /^250[ -]/);
    if (maybe()) s.expect('RCPT before MAIL', await ask(w, 'RCPT TO:<b@dest.test>\r\n'), /^503 5\.5\.1/);
    if (maybe()) s.expect('DATA before MAIL', await ask(w, 'DATA\r\n'), /^503 5\.5\.1/);
    s.expect('MAIL', await ask(w, 'MAIL FROM:<a@client.test>\r\n'), /^250 /);
    if (maybe()) s.expect('nested MAIL', await ask(w, 'MAIL FROM:<c@client.test>\r\n'), /^503 5\.5\.1/);
    if (maybe()) s.expect('DATA without RCPT', await ask(w, 'DATA\r\n'), /^554 5\.5\.1/);
    s.expect('RSET', await ask(w, 'RSET\r\n'), /^250 /);
    await s.sendValid(w);
    await s.quit(w);
  },
};

/** Lines that keep the session in the command phase (no RCPT or DATA: those would open a relay). */
function garbageLine(rng: Rng): Buffer {
  const n = rng.int(0, 5);
  if (n === 0)
    return Buffer.from(
      rng.pick(['NOOP', 'RSET', 'HELP', 'VRFY someone', 'EXPN list', 'STARTTLS', 'AUTH PLAIN', 'BDAT 10', 'MAIL FROM:<g@client.test>']),
    );
  if (n === 1) return Buffer.from(rng.word(1, 12));
  if (n === 2) return Buffer.from(`${rng.word(3, 6).toUpperCase()} ${rng.word(0, 40)}`);
  // Arbitrary bytes, without CR or LF so the line count is known.
  return Buffer.from(rng.bytes(rng.int(1, 200)).map((b) => (b === 0x0a || b === 0x0d ? 0x20 : b)));
}

const pipelinedGarbage: FuzzKind = {
  name: 'pipelined-garbage',
  async run(s) {
    const w = await s.ready();
    const lines = Array.from({ length: s.rng.int(3, 30) }, () => garbageLine(s.rng));
    await w.write(Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\r\n')])));
    // Every line gets exactly one reply, unless the session ends: 221 to a QUIT-like word, 421 to an
    // HTTP verb (a word can be GET), or the 10th error (every 5xx here is one) gets its reply and
    // then 421, and the session closes.
    let errors = 0;
    for (let i = 0; i < lines.length; i++) {
      const r = await w.read();
      if (typeof r === 'string') {
        s.expect(`reply ${i + 1} of ${lines.length} pipelined lines`, r, /^\d{3} /);
        return w.close();
      }
      if (r.code === 221 || r.code === 421) return w.close();
      if (r.code >= 500) errors++;
      if (errors === 10) {
        s.expect('after 10 errors', await w.read(), /^421 4\.7\.0/);
        return w.close();
      }
    }
    await ask(w, 'RSET\r\n');
    await s.sendValid(w);
    await s.quit(w);
  },
};

const randomBytes: FuzzKind = {
  name: 'random-bytes',
  async run(s) {
    const w = await s.connect();
    for (let i = s.rng.int(1, 3); i > 0; i--) await w.write(s.rng.bytes(s.rng.int(1, 4096)));
    // Whatever it makes of it: well-formed replies only, until it closes or goes quiet.
    for (;;) {
      const r = await w.read(1000);
      if (r === 'timeout' || r === 'closed') break;
      if (!s.expect('replies to random bytes', r, /^\d{3}[ -]/)) break;
    }
    w.close(s.rng.chance(0.5) ? 'rst' : 'fin');
  },
};

const httpRequest: FuzzKind = {
  name: 'http-request',
  async run(s) {
    const w = await s.connect();
    const verb = s.rng.pick(['GET / HTTP/1.1', 'POST /submit HTTP/1.1', 'CONNECT mail.example:25 HTTP/1.1', 'HEAD / HTTP/1.0']);
    s.expect('HTTP request line', await ask(w, `${verb}\r\nHost: x\r\n\r\n`), /^421 /);
    if (!(await w.waitClosed(s.closeWaitMs))) s.expect('close after 421', 'timeout', /^closed$/);
    w.close();
  },
};

const tooManyErrors: FuzzKind = {
  name: 'too-many-errors',
  async run(s) {
    const w = await s.ready();
    for (let i = 1; i <= 10; i++) s.expect(`error ${i}`, await ask(w, `${s.rng.word(4, 8)}X ${i}\r\n`), /^500 /);
    s.expect('after 10 errors', await w.read(), /^421 4\.7\.0/);
    if (!(await w.waitClosed(s.closeWaitMs))) s.expect('close after 421', 'timeout', /^closed$/);
    w.close();
  },
};

const declaredTooBig: FuzzKind = {
  name: 'size-declared-too-big',
  async run(s) {
    const w = await s.ready();
    const r = await s.send(w, s.tx({ params: [`SIZE=${FUZZ_MAX_MESSAGE + s.rng.int(1, 1e9)}`] }));
    s.expect('MAIL with SIZE over the limit', r.mail, /^552 5\.3\.4/);
    await s.sendValid(w);
    await s.quit(w);
  },
};

/** Valid, if unusual, envelopes: each must arrive exactly as sent. */
function unusualEnvelope(name: string, shape: (s: Session) => Partial<Parameters<Session['tx']>[0]>): FuzzKind {
  return {
    name,
    async run(s) {
      const w = await s.ready();
      const r = await s.send(w, s.tx(shape(s)));
      s.expect(name, r.final ?? r.data ?? r.rcpts.at(-1) ?? r.mail, /^250 /);
      await s.quit(w);
    },
  };
}

const rcptMix: FuzzKind = {
  name: 'rcpt-mix',
  async run(s) {
    const w = await s.ready();
    const rcpts = [
      Buffer.from('ok1@dest.test'),
      Buffer.from(s.rng.pick(['no-at-sign', 'a@', '@dest.test', 'postmaster', 'x@-bad-.test'])),
      Buffer.from('ok2@[127.0.0.1]'),
    ];
    const r = await s.send(w, s.tx({ rcpts }));
    s.expect('bad recipient among good ones', r.rcpts[1], /^5\d\d /);
    s.expect('the good ones delivered', r.final ?? 'closed', /^250 /);
    await s.quit(w);
  },
};

export const commandKinds: FuzzKind[] = [
  badLine('bare-lf-command', () => ['MAIL FROM:<a@client.test>\n', 'NOOP\n', 'RCPT TO:<b@dest.test>\n', 'EHLO x\n']),
  badLine('bare-cr-command', () => ['MAIL FROM:<a@client.test>\rRCPT TO:<b@dest.test>\r\n', 'NOOP\r\r\n', '\rQUIT\r\n']),
  badLine('nul-command', () => ['MAIL FROM:<a\0b@client.test>\r\n', 'NOOP\0\r\n', '\0\r\n', 'EHLO x\0y\r\n']),
  badLine('overlong-command', (rng) => [
    `MAIL FROM:<${'a'.repeat(rng.int(2050, 20_000))}@client.test>\r\n`,
    `NOOP ${'x'.repeat(rng.int(2050, 70_000))}\r\n`,
  ]),
  utf8Address('invalid-utf8-smtputf8', false, true),
  utf8Address('invalid-utf8-plain', false, false),
  utf8Address('utf8-smtputf8', true, true),
  utf8Address('utf8-without-smtputf8', true, false),
  outOfOrder,
  pipelinedGarbage,
  randomBytes,
  httpRequest,
  tooManyErrors,
  declaredTooBig,
  rcptMix,
  unusualEnvelope('null-sender', () => ({ from: Buffer.alloc(0) })),
  unusualEnvelope('quoted-local-part', (s) => ({
    from: Buffer.from(`"a.b ${s.rng.word()}"@client.test`),
    rcpts: [Buffer.from('"john doe"@dest.test')],
  })),
  unusualEnvelope('verb-case-and-space', (s) => ({
    verbs: s.rng.pick([
      { mail: 'mail from:', rcpt: 'rcpt to:' },
      { mail: 'Mail From: ', rcpt: 'Rcpt To: ' },
    ]),
  })),
  unusualEnvelope('many-recipients', (s) => ({
    rcpts: Array.from({ length: s.rng.int(2, 40) }, (_, i) => Buffer.from(`r${i}@dest.test`)),
  })),
];
