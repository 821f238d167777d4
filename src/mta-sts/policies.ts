import type { FetchFailure } from './fetch.js';
import { parseStsTxt, type StsPolicy } from './policy.js';
import { BoundedMap } from '../util/bounded-map.js';

/** Small values shared by a fleet beside the tickets (the ticket store's memory or Redis). */
export interface PolicyKv {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
}

/** A policy with the TXT id it was fetched under, and when it stops applying (ms since the epoch). */
export interface KnownPolicy extends StsPolicy {
  domain: string;
  id: string;
  expiresAt: number;
}

/** What applies to a domain now: a policy (fresh or cached), or none, and a fetch that failed on the way. */
export interface StsLookup {
  policy?: KnownPolicy;
  failure?: FetchFailure;
  why?: string;
  /** The policy was fetched just now (its text goes to the audit log once per fetch). */
  fetched?: boolean;
}

export interface PolicySources {
  /** The TXT strings of a name (`[]` when it has none) and their TTL, s; `undefined` when the lookup failed. */
  txt(name: string): Promise<{ records: string[]; ttl: number } | undefined>;
  fetch(domain: string): Promise<{ policy: StsPolicy } | { failure: FetchFailure; why: string }>;
  kv: PolicyKv;
  now?: () => number;
}

/** What a policy makes of a connection: the words a cached connection is checked against. */
export function appliedOf(p: KnownPolicy | undefined): string {
  return p && p.mode !== 'none' ? `${p.mode}:${p.id}` : 'none';
}

const MIN_TXT_TTL_S = 1;
/**
 * How long a failed `_mta-sts` TXT lookup is remembered: the domain's next messages go on at once
 * with the same verdict instead of each waiting out the resolver's timeouts, and the lookup is
 * tried again soon after (a blocked lookup may be an attack or an outage that ends).
 */
const TXT_FAILURE_MS = 60_000;
const MAX_TXT_TTL_S = 300;
const MAX_DOMAINS = 10_000;

/** Refetch ahead of expiry once this little of a cached policy's life is left (RFC 8461 10.2: refresh before it lapses). */
const REFRESH_AHEAD_MS = 24 * 3600 * 1000;

/**
 * RFC 8461 5: the TXT id says whether the cached policy is current; a new id, or none cached, is
 * a fetch. A failed fetch keeps a cached policy in force until its own max_age ends (5.1); with
 * nothing cached the domain has no policy, and the failure is recorded (TLS-RPT). A TXT lookup that
 * fails (no answer, SERVFAIL) is such a failure too, not "no policy": blocking it is the downgrade
 * an attacker would try; it is remembered for TXT_FAILURE_MS. A policy near its end is fetched
 * again in the background.
 */
export class MtaStsPolicies {
  private readonly now: () => number;
  private readonly refreshing = new Set<string>();
  /** Per domain, what applied at the last lookup (`enforce:id`, `none`), until that TXT answer's TTL ends. */
  private readonly recent = new BoundedMap<string, { applied: string; until: number }>(MAX_DOMAINS);
  /** Per domain, until when its failed TXT lookup stands (bounded like `recent`). */
  private readonly txtFailed = new BoundedMap<string, number>(MAX_DOMAINS);

  constructor(private readonly src: PolicySources) {
    this.now = src.now ?? Date.now;
  }

  /**
   * What applied to the domain at its last lookup, while that TXT answer is fresh; undefined once
   * it is stale. A cached SMTP connection made under a policy is reused only while this still says it.
   */
  applied(domain: string): string | undefined {
    const r = this.recent.get(domain.toLowerCase());
    return r && r.until > this.now() ? r.applied : undefined;
  }

  async policyFor(domain: string): Promise<StsLookup> {
    const d = domain.toLowerCase();
    const failedUntil = this.txtFailed.get(d);
    const remembered = failedUntil !== undefined && failedUntil > this.now();
    const [answer, cached] = await Promise.all([remembered ? undefined : this.src.txt(`_mta-sts.${d}`), this.cached(d)]);
    if (answer === undefined && !remembered) this.txtFailed.set(d, this.now() + TXT_FAILURE_MS);
    if (answer !== undefined) this.txtFailed.delete(d);
    const found =
      answer === undefined
        ? {
            ...(cached ? { policy: cached } : {}),
            failure: 'sts-policy-fetch-error' as const,
            why: `no answer to the TXT lookup of _mta-sts.${d}`,
          }
        : await this.decide(d, answer.records, cached);
    const ttlS = Math.min(MAX_TXT_TTL_S, Math.max(MIN_TXT_TTL_S, answer?.ttl ?? MIN_TXT_TTL_S));
    this.recent.set(d, { applied: appliedOf(found.policy), until: this.now() + ttlS * 1000 });
    return found;
  }

  private async decide(d: string, records: string[], cached: KnownPolicy | undefined): Promise<StsLookup> {
    const txt = parseStsTxt(records);
    // No (valid) record: a cached policy still applies (an attacker who strips TXT must not end it).
    if ('error' in txt) return cached ? { policy: cached } : {};
    if (cached && cached.id === txt.id) {
      // A quarter of its life left, a day at most: fetched again in the background, so it never lapses in use.
      if (cached.expiresAt - this.now() < Math.min(REFRESH_AHEAD_MS, cached.maxAgeSeconds * 250)) this.refreshInBackground(d, txt.id);
      return { policy: cached };
    }
    const got = await this.fetchAndKeep(d, txt.id);
    if ('failure' in got) return cached ? { policy: cached, failure: got.failure, why: got.why } : { failure: got.failure, why: got.why };
    return { policy: got, fetched: true };
  }

  private async fetchAndKeep(domain: string, id: string): Promise<KnownPolicy | { failure: FetchFailure; why: string }> {
    const got = await this.src.fetch(domain);
    if ('failure' in got) return got;
    const ttlMs = got.policy.maxAgeSeconds * 1000;
    const known: KnownPolicy = { ...got.policy, domain, id, expiresAt: this.now() + ttlMs };
    if (ttlMs > 0) await this.src.kv.set(`sts:${domain}`, JSON.stringify(known), ttlMs).catch(() => undefined);
    return known;
  }

  private refreshInBackground(domain: string, id: string): void {
    if (this.refreshing.has(domain)) return;
    this.refreshing.add(domain);
    void this.fetchAndKeep(domain, id).finally(() => this.refreshing.delete(domain));
  }

  private async cached(domain: string): Promise<KnownPolicy | undefined> {
    const raw = await this.src.kv.get(`sts:${domain}`).catch(() => undefined);
    if (raw === undefined) return undefined;
    try {
      const p = JSON.parse(raw) as KnownPolicy;
      return p.expiresAt > this.now() ? p : undefined;
    } catch {
      return undefined;
    }
  }
}
