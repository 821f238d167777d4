/** A trust key (made by upstream/tls-target.ts `keyOf`, from every input of the trust decision). */
export interface CacheKey {
  /** Full digest, the store's key. */
  id: string;
  /** 12 hex characters for logs. */
  short: string;
  /** host:port, for people. */
  destination: string;
}
