import { UPSTREAM_ERROR_CAUSES, type UpstreamErrorCause } from '../error-cause.js';
import { upstreamErrorStageSchema, type UpstreamErrorStage } from '../events.js';
import { count, tally } from './figure-kinds.js';
import { conditionBits, Tabulation, type Values } from './figures.js';

/**
 * The per-destination statistics of failed upstream attempts (the report's `upstreamErrors`):
 * failed handshakes, at stage `tls`, and `upstream.error` lines, before it. A table like
 * handshake-figures.ts, one line a figure.
 */

/** Where a failed attempt stopped: before TLS (an `upstream.error` line), or in the handshake. */
export type FailureStage = UpstreamErrorStage | 'tls';

/** In the order an attempt goes through them. */
export const FAILURE_STAGES: readonly (FailureStage | 'other')[] = [...upstreamErrorStageSchema.options, 'tls', 'other'];

export interface Failure {
  cause: UpstreamErrorCause;
  stage: FailureStage | 'other';
}

/** Failed upstream attempts to one destination: failed handshakes and `upstream.error` lines. */
export const UPSTREAM_ERROR_FIGURES = {
  total: count('any'),
  /** connect, timeout, closed, certificate, tls, protocol, other (see audit/error-cause.ts). */
  byCause: tally('any', (f: Failure) => f.cause, { keys: UPSTREAM_ERROR_CAUSES }),
  /** connect, greeting, ehlo, starttls, injection; tls for a failed handshake. */
  byStage: tally('any', (f: Failure) => f.stage, { keys: FAILURE_STAGES }),
};
export type UpstreamErrorValues = Values<typeof UPSTREAM_ERROR_FIGURES>;
const ANY = conditionBits(['any']);

export class UpstreamErrorStats extends Tabulation<Failure, 'any', typeof UPSTREAM_ERROR_FIGURES> {
  constructor() {
    super(UPSTREAM_ERROR_FIGURES, ANY);
  }

  addFailure(f: Failure): void {
    this.add(f, ANY.any);
  }
}
