/**
 * Time buckets for the HTML charts, bounded whatever the log's span: buckets start one minute
 * wide and double in width (merging neighbours) whenever the span would need more than
 * `maxBuckets`. Every series shares the width, so they line up on one axis.
 */
export interface Bucket {
  connections: number;
  resumed: number;
  fullMsSum: number;
  fullN: number;
  resumedMsSum: number;
  resumedN: number;
  /** Tickets left in the slot at the bucket's latest handshake. */
  ticketsLeft: number;
  ticketsLeftAt: number;
}

export interface Sample {
  timeMs: number;
  resumed: boolean;
  failed: boolean;
  handshakeMs: number;
  ticketsLeft: number;
}

export class TimeAxis {
  widthMs = 60_000;
  minIndex = Infinity;
  maxIndex = -Infinity;

  constructor(readonly maxBuckets = 120) {}

  /** The bucket index of a time at the current width (widening first if needed). */
  place(timeMs: number): number {
    let i = Math.floor(timeMs / this.widthMs);
    this.minIndex = Math.min(this.minIndex, i);
    this.maxIndex = Math.max(this.maxIndex, i);
    while (this.maxIndex - this.minIndex + 1 > this.maxBuckets) {
      this.widthMs *= 2;
      this.minIndex = Math.floor(this.minIndex / 2);
      this.maxIndex = Math.floor(this.maxIndex / 2);
      i = Math.floor(i / 2);
    }
    return i;
  }

  /** Bucket start times, oldest first. */
  starts(): number[] {
    const out: number[] = [];
    for (let i = this.minIndex; i <= this.maxIndex; i++) out.push(i * this.widthMs);
    return out;
  }
}

export class Series {
  private widthMs: number;
  private readonly buckets = new Map<number, Bucket>();

  constructor(private readonly axis: TimeAxis) {
    this.widthMs = axis.widthMs;
  }

  add(s: Sample): void {
    const index = this.axis.place(s.timeMs);
    this.catchUp();
    let b = this.buckets.get(index);
    if (!b) {
      b = { connections: 0, resumed: 0, fullMsSum: 0, fullN: 0, resumedMsSum: 0, resumedN: 0, ticketsLeft: 0, ticketsLeftAt: -Infinity };
      this.buckets.set(index, b);
    }
    b.connections++;
    if (s.resumed) b.resumed++;
    if (!s.failed) {
      if (s.resumed) {
        b.resumedMsSum += s.handshakeMs;
        b.resumedN++;
      } else {
        b.fullMsSum += s.handshakeMs;
        b.fullN++;
      }
    }
    if (s.timeMs >= b.ticketsLeftAt) {
      b.ticketsLeft = s.ticketsLeft;
      b.ticketsLeftAt = s.timeMs;
    }
  }

  /** One entry per axis bucket (null where this series had no handshake). */
  values(): (Bucket | null)[] {
    this.catchUp();
    const out: (Bucket | null)[] = [];
    for (let i = this.axis.minIndex; i <= this.axis.maxIndex; i++) out.push(this.buckets.get(i) ?? null);
    return out;
  }

  /** Merges neighbouring buckets after the axis widened. */
  private catchUp(): void {
    while (this.widthMs < this.axis.widthMs) {
      const merged = new Map<number, Bucket>();
      for (const [i, b] of this.buckets) {
        const j = Math.floor(i / 2);
        const into = merged.get(j);
        merged.set(j, into ? mergeBuckets(into, b) : b);
      }
      this.buckets.clear();
      for (const [i, b] of merged) this.buckets.set(i, b);
      this.widthMs *= 2;
    }
  }
}

function mergeBuckets(a: Bucket, b: Bucket): Bucket {
  const later = b.ticketsLeftAt >= a.ticketsLeftAt ? b : a;
  return {
    connections: a.connections + b.connections,
    resumed: a.resumed + b.resumed,
    fullMsSum: a.fullMsSum + b.fullMsSum,
    fullN: a.fullN + b.fullN,
    resumedMsSum: a.resumedMsSum + b.resumedMsSum,
    resumedN: a.resumedN + b.resumedN,
    ticketsLeft: later.ticketsLeft,
    ticketsLeftAt: later.ticketsLeftAt,
  };
}
