import type { Session } from './session.js';

/** One kind of bad (or tricky) input: plays a whole session through `s`, recording as it goes. */
export interface FuzzKind {
  name: string;
  run(s: Session): Promise<void>;
}

/** The fuzz listener's `maxMessageSize`: small, so oversized messages are cheap to send. */
export const FUZZ_MAX_MESSAGE = 65_536;
