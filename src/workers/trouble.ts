/** What can go wrong with workers, each said on stderr and counted (`ticketbooth_worker_trouble_total{kind}`). */
export const TROUBLE_KINDS = {
  restarted: 'a worker ended unasked, or a restart of one failed, and another is being started',
  'start-failed': 'a worker did not start serving in time and was killed',
  killed: 'a stopping worker did not end in time and was killed (its last audit lines may be lost)',
  channel: 'a message between the primary and a worker failed (a reload refused, a note that failed)',
} as const satisfies Record<string, string>;

export type TroubleKind = keyof typeof TROUBLE_KINDS;

/** The counts, by kind. */
export class WorkerTrouble {
  private readonly counted = Object.fromEntries(Object.keys(TROUBLE_KINDS).map((k) => [k, 0])) as Record<TroubleKind, number>;

  add(kind: TroubleKind): void {
    this.counted[kind]++;
  }

  counts(): Readonly<Record<TroubleKind, number>> {
    return this.counted;
  }
}
