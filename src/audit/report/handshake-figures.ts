import { upstreamErrorCause } from '../error-cause.js';
import { offerKindSchema } from '../events.js';
import { count, countsBy, distinct, distribution, durations, extreme, level, mean, share, sum, tally } from './figure-kinds.js';
import { conditionBits, countIndex, group, internal, perDestination, Tabulation, type Placed, type Table, type Values } from './figures.js';
import { FULL_CAUSES, type HandshakeRecord } from './record-schemas.js';

/**
 * The per-destination statistics of `tls.handshake` lines: one line a figure, in the order the
 * JSON report lists them (`--format json` field names are a file format: add, do not rename).
 * A figure names the conditions a line must meet to count, and what it reads from the record.
 * A new figure is one line here: the JSON report and the overall merge pick it up; the text and
 * HTML tables show it once it has a column in columns.ts.
 */

const OFFERS = offerKindSchema.options;

/** What a line can be; `handshakeConditions` works them out once a line. */
const CONDITIONS = [
  'any',
  /** Completed: no `error`. */
  'ok',
  'failed',
  'resumed',
  'full',
  /**
   * A full handshake the cache counted as a refusal. After a second offer only this says the
   * server refused a reused ticket: an expired ticket or a version-mixed balancer says nothing
   * about single use (old lines have no cause, and count).
   */
  'refused',
  /** A TLS 1.3 ticket hash offered when it had been offered before (within the ticket window). */
  'repeat',
  /** The line says it offered a spent ticket again on purpose (adaptive reuse). */
  'reoffered',
  'notReoffered',
  'tls13',
  /** The server sent sessions that could not be read. */
  'unreadable',
  ...OFFERS.map((k) => `offered:${k}` as const),
  ...FULL_CAUSES.map((c) => `cause:${c}` as const),
] as const;
type Condition = (typeof CONDITIONS)[number];
const IS = conditionBits(CONDITIONS);
/** Bits by offer kind and full-handshake cause, in the order of their lists (a search of three or five beats hashing). */
const OFFER_BITS = OFFERS.map((k) => IS[`offered:${k}`]);
const CAUSE_BITS = FULL_CAUSES.map((c) => IS[`cause:${c}`]);
const bitOf = <K extends string>(keys: readonly K[], bits: readonly number[], key: string): number => bits[keys.indexOf(key as K)] ?? 0;

export function handshakeConditions(e: HandshakeRecord, repeat: boolean): number {
  const ok = !e.error;
  const refused = ok && !e.resumed && (e.fullCause === undefined || e.fullCause === 'refused');
  return (
    IS.any |
    (ok ? IS.ok | (e.resumed ? IS.resumed : IS.full) : IS.failed) |
    (refused ? IS.refused : 0) |
    (repeat ? IS.repeat : 0) |
    (e.reoffered ? IS.reoffered : IS.notReoffered) |
    (e.protocol === 'TLSv1.3' ? IS.tls13 : 0) |
    (((e.ticketsUnreadable ?? 0) | 0) > 0 ? IS.unreadable : 0) |
    bitOf(OFFERS, OFFER_BITS, e.offered) |
    bitOf(FULL_CAUSES, CAUSE_BITS, e.fullCause ?? 'unknown')
  );
}

/** Names and versions kept per destination; more are not listed. */
const MAX_DISTINCT = 8;
/** Tickets counted per handshake up to this many; more fall in the last cell. */
const MAX_TICKETS_COUNTED = 16;

export const HANDSHAKE_FIGURES = {
  servernames: perDestination(distinct('any', (e) => e.servername, MAX_DISTINCT)),
  listeners: perDestination(distinct('any', (e) => e.listener, MAX_DISTINCT)),
  connections: count('any'),
  failed: count('failed'),
  resumed: count('resumed'),
  /** Resumed / completed handshakes; null when none completed. */
  resumedShare: share('resumed', 'ok', 4),
  full: count('full'),
  fullByCause: countsBy(FULL_CAUSES, (c) => ['full', `cause:${c}`]),
  /** Negotiated versions, the two expected ones first. */
  versions: tally('ok', (e) => e.protocol || undefined, { keys: ['TLSv1.3', 'TLSv1.2'], max: MAX_DISTINCT }),
  offered: countsBy(OFFERS, (k) => `offered:${k}`),
  /** Failed handshakes by cause (audit/error-cause.ts). */
  errors: tally('failed', (e) => upstreamErrorCause(e)),
  /** Tickets (TLS 1.3) or sessions (TLS 1.2) received per completed full and resumed handshake. */
  ticketsPerFull: mean('full', (e) => e.ticketsReceived, 2),
  ticketsPerResumed: mean('resumed', (e) => e.ticketsReceived, 2),
  /** Sessions the servers sent that ticketbooth could not read, so did not keep (resumption off there). */
  ticketsUnreadable: sum(['ok', 'unreadable'], (e) => (e.ticketsUnreadable ?? 0) | 0),
  /** Adaptive reuse: spent tickets offered again, and what the server did with them. */
  adaptiveReuse: group({ reoffered: count('reoffered'), resumed: count('reoffered', 'resumed'), refused: count('reoffered', 'refused') }),
  /** Single use: TLS 1.3 tickets offered twice, by adaptive reuse on purpose or unattributed (a bug). */
  singleUseViolations: group({
    total: count('repeat'),
    adaptive: count('repeat', 'reoffered'),
    unattributed: count('repeat', 'notReoffered'),
  }),
  handshakeMs: group({ full: durations('full', (e) => e.handshakeMs), resumed: durations('resumed', (e) => e.handshakeMs) }),
  /** TLS 1.3 tickets left after the latest handshake (overall: the sum over destinations, the whole stock). */
  ticketsLeft: level(
    'any',
    (e) => e.time,
    (e) => e.ticketsLeft,
  ),
  firstSeen: extreme('any', (e) => e.time, 'min'),
  lastSeen: extreme('any', (e) => e.time, 'max'),
  // For the verdicts (verdicts.ts): what second offers got, and how many tickets came per handshake.
  repeatResumed: internal(count('repeat', 'resumed')),
  repeatRefused: internal(count('repeat', 'refused')),
  tls13TicketsAfterFull: internal(distribution(['full', 'tls13'], (e) => e.ticketsReceived, MAX_TICKETS_COUNTED + 1)),
  tls13TicketsAfterResumed: internal(distribution(['resumed', 'tls13'], (e) => e.ticketsReceived, MAX_TICKETS_COUNTED + 1)),
} satisfies Table<HandshakeRecord, Condition>;

export type HandshakeFigures = typeof HANDSHAKE_FIGURES;
export type HandshakeValues = Values<HandshakeFigures>;
/** The figures of every statistics block (overall and per destination). */
export type HandshakeStatsValues = Placed<HandshakeFigures, 'stats'>;

const CONNECTIONS = countIndex(HANDSHAKE_FIGURES, IS, 'connections');

export class HandshakeStats extends Tabulation<HandshakeRecord, Condition, HandshakeFigures> {
  constructor() {
    super(HANDSHAKE_FIGURES, IS);
  }

  /** Read for every series the charts might drop (aggregate.ts), so without a lookup. */
  get connections(): number {
    return this.counts[CONNECTIONS];
  }
}
