/**
 * Time buckets for the HTML charts, as wide as the log's span calls for: buckets start one second
 * wide and step up through round widths (`BUCKET_WIDTHS_S`, merging neighbours) whenever the span
 * would need more than `maxBuckets`. A ten-second log gets ten points, not one dot; a day gets
 * 10-minute buckets. Each width is a whole multiple of the one before, so the widening is exact
 * and the log is read once, streaming. Every series shares the width, so they line up on one axis.
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

/**
 * The bucket widths, narrowest first, each a whole multiple of the one before (at most 5 times it,
 * so a widening leaves more than `maxBuckets / 5` buckets); past the last, widths double.
 */
export const BUCKET_WIDTHS_S = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400] as const;

/** The width after `widthMs`: the next round one, or twice it past the table. */
function wider(widthMs: number): number {
  const next = BUCKET_WIDTHS_S.find((s) => s * 1000 > widthMs);
  return next === undefined ? widthMs * 2 : next * 1000;
}

export class TimeAxis {
  widthMs: number = BUCKET_WIDTHS_S[0] * 1000;
  minIndex = Infinity;
  maxIndex = -Infinity;

  /** 150: after a widening (at most 5-fold) a span still has more than 30 buckets. */
  constructor(readonly maxBuckets = 150) {}

  /** The bucket index of a time at the current width (widening first if needed). */
  place(timeMs: number): number {
    let i = Math.floor(timeMs / this.widthMs);
    this.minIndex = Math.min(this.minIndex, i);
    this.maxIndex = Math.max(this.maxIndex, i);
    while (this.maxIndex - this.minIndex + 1 > this.maxBuckets) {
      const factor = wider(this.widthMs) / this.widthMs;
      this.widthMs *= factor;
      this.minIndex = Math.floor(this.minIndex / factor);
      this.maxIndex = Math.floor(this.maxIndex / factor);
      i = Math.floor(i / factor);
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
      const factor = wider(this.widthMs) / this.widthMs;
      const merged = new Map<number, Bucket>();
      for (const [i, b] of this.buckets) {
        const j = Math.floor(i / factor);
        const into = merged.get(j);
        merged.set(j, into ? mergeBuckets(into, b) : b);
      }
      this.buckets.clear();
      for (const [i, b] of merged) this.buckets.set(i, b);
      this.widthMs *= factor;
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
