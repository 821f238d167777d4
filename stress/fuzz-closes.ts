import type { FuzzKind } from './fuzz-kind.js';
import { onTheWire } from './message.js';

/**
 * The client goes away (FIN or RST, chosen by the seed) at every stage of a transaction. Nothing
 * may be delivered unless the final dot was sent; after the dot, one copy or none are both right
 * (the client never heard the reply, so it will retry: the documented duplicate).
 */
const STAGES = ['connect', 'greeting', 'ehlo', 'mail', 'rcpt', 'data', 'mid-body', 'after-dot'] as const;

function earlyClose(stage: (typeof STAGES)[number]): FuzzKind {
  return {
    name: `early-close-${stage}`,
    async run(s) {
      const how = s.rng.chance(0.5) ? 'rst' : 'fin';
      const w = await s.open();
      if (stage === 'connect') return w.close(how);
      s.expect('greeting', await w.read(), /^220 /);
      if (stage === 'greeting') return w.close(how);
      s.expect('EHLO', await w.cmd('EHLO client.test'), /^250[ -]/);
      if (stage === 'ehlo') return w.close(how);
      const tx = s.tx();
      const envelope = { from: tx.from, rcpts: [] as Buffer[], params: [] };
      const attempt = s.ledger.attempt(tx.id, s.kind, s.index, envelope, tx.body);
      s.expect('MAIL', await w.cmd(Buffer.concat([Buffer.from('MAIL FROM:<'), tx.from, Buffer.from('>')])), /^250 /);
      if (stage === 'mail') return w.close(how);
      if (s.expect('RCPT', await w.cmd(Buffer.concat([Buffer.from('RCPT TO:<'), tx.rcpts[0], Buffer.from('>')])), /^250 /))
        envelope.rcpts.push(tx.rcpts[0]);
      if (stage === 'rcpt') return w.close(how);
      s.expect('DATA', await w.cmd('DATA'), /^354 /);
      if (stage === 'data') return w.close(how);
      const wire = onTheWire(tx.body);
      if (stage === 'mid-body') {
        // Anything short of the end-of-data line ".\r\n".
        await w.write(wire.subarray(0, s.rng.int(1, wire.length - 3)));
        return w.close(how);
      }
      await w.write(wire);
      attempt.dotSent = true;
      attempt.outcome = 'no-reply';
      w.close(how);
    },
  };
}

export const closeKinds: FuzzKind[] = STAGES.map(earlyClose);
