import { closeKinds } from './fuzz-closes.js';
import { commandKinds } from './fuzz-commands.js';
import { dataKinds } from './fuzz-data.js';
import type { FuzzKind } from './fuzz-kind.js';

/** Every kind, in a fixed order: session i plays kind i mod n, so each gets an equal share. */
export const FUZZ_KINDS: FuzzKind[] = [...commandKinds, ...dataKinds, ...closeKinds];
