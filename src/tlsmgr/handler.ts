import { createHash } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import type { CacheKey } from '../resumption/cache-key.js';
import type { Resumption } from '../resumption/policy.js';
import { say } from '../util/operator-log.js';
import { type Attrs, decodeData, encodeData, encodeInt, printable } from './attr0.js';
import { CLIENT_CACHES, STAT_ERR, STAT_OK, disabledReply, failReply, wellFormed, type Reply } from './requests.js';

/** Sends a request on to the real tlsmgr and returns its reply; rejects when it cannot. */
export type Forwarder = (req: Attrs) => Promise<Reply>;

export interface HandlerOptions {
  /** The cache in force, asked per request: a `serve` reload may replace it (a new reuse policy). */
  cache: () => Resumption;
  audit: AuditLog;
  /** Where seed, tktkey and the smtpd cache go; answered as a disabled cache when absent. */
  forward?: Forwarder;
  /** The `timeout` of a policy reply for smtp and lmtp: how long Postfix may think an entry lives. */
  sessionTimeoutSeconds: number;
}

/** Postfix's serverid never holds a secret, but it is long: ids beyond this are refused. */
const MAX_CACHE_ID = 4096;

/**
 * One tlsmgr request in, one reply out. smtp and lmtp cache requests go to ticketbooth's
 * ResumptionCache under Postfix's own serverid (it binds next hop, address, TLS level, ciphers,
 * SNI and DANE data already): a lookup takes a single-use TLS 1.3 ticket or reads the TLS 1.2
 * session, an update stores what the server handed out. Never throws: a failure is a reply.
 */
export class TlsmgrHandler {
  /** Forwarding failures, for the operator notice (one per change, not one per request). */
  forwardFailing = false;

  constructor(private readonly o: HandlerOptions) {}

  private get cache(): Resumption {
    return this.o.cache();
  }

  async handle(req: Attrs): Promise<Reply> {
    const name = wellFormed(req);
    if (name === undefined) return failReply(req.get('request'));
    const cacheType = req.get('cache_type');
    if (cacheType !== undefined && CLIENT_CACHES.has(cacheType)) {
      const id = req.get('cache_id');
      if (name === 'policy') return this.policy();
      if (id === undefined || id.length === 0 || id.length > MAX_CACHE_ID) return failReply(name);
      const key = keyOf(cacheType, id);
      if (name === 'lookup') return this.lookup(cacheType, key);
      if (name === 'update') return this.update(cacheType, key, req.get('session'));
      return this.remove(key);
    }
    return this.elsewhere(name, req);
  }

  private policy(): Reply {
    return [
      ['status', encodeInt(STAT_OK)],
      ['cachable', '1'],
      ['timeout', encodeInt(this.o.sessionTimeoutSeconds)],
    ];
  }

  private async lookup(cacheType: string, key: CacheKey): Promise<Reply> {
    const base = { event: 'tlsmgr.lookup' as const, cacheType, cacheId: key.short, destination: key.destination };
    try {
      const offer = await this.cache.offer(key);
      // Postfix never says how the handshake went: the place in a version-mixed order is released here.
      this.cache.abandoned(offer, true);
      this.o.audit.record({
        ...base,
        vended: offer.kind,
        reoffered: offer.reoffered,
        ...(offer.hash !== undefined ? { ticketHash: offer.hash } : {}),
        ...(offer.emptyBecause !== undefined ? { emptyBecause: offer.emptyBecause } : {}),
      });
      if (!offer.session)
        return [
          ['status', encodeInt(STAT_ERR)],
          ['session', ''],
        ];
      return [
        ['status', encodeInt(STAT_OK)],
        ['session', encodeData(offer.session)],
      ];
    } catch (err) {
      this.o.audit.record({ ...base, vended: 'none', reoffered: false, error: String(err) });
      return [
        ['status', encodeInt(STAT_ERR)],
        ['session', ''],
      ];
    }
  }

  private async update(cacheType: string, key: CacheKey, data: string | undefined): Promise<Reply> {
    const base = { event: 'tlsmgr.update' as const, cacheType, cacheId: key.short, destination: key.destination };
    const der = decodeData(data);
    if (!der || der.length === 0) {
      this.o.audit.record({ ...base, result: 'unreadable', error: 'session is not base64' });
      return failReply('update', STAT_ERR);
    }
    try {
      const received = await this.cache.received(key, der);
      if (received.kind === 'stored') {
        const v = received.info.version;
        // What the server negotiated: the version history a version-mixed destination is told by.
        if (v !== 'other') await this.cache.negotiatedElsewhere(key, v);
        this.o.audit.record({
          ...base,
          result: 'stored',
          version: v,
          ticketHash: received.hash,
          ...(received.info.lifetimeHint !== undefined ? { lifetimeHint: received.info.lifetimeHint } : {}),
        });
        return [['status', encodeInt(STAT_OK)]];
      }
      this.o.audit.record({ ...base, result: received.kind, ...(received.kind === 'unreadable' ? { error: received.reason } : {}) });
    } catch (err) {
      this.o.audit.record({ ...base, result: 'failed', error: String(err) });
    }
    return [['status', encodeInt(STAT_ERR)]];
  }

  /** smtp(8) deletes after a failed handshake or verification: the whole slot goes. */
  private async remove(key: CacheKey): Promise<Reply> {
    try {
      await this.cache.forget(key.id);
      return [['status', encodeInt(STAT_OK)]];
    } catch {
      return [['status', encodeInt(STAT_ERR)]];
    }
  }

  /** seed, tktkey, the smtpd cache: the real tlsmgr's, unchanged, or a disabled cache's answer. */
  private async elsewhere(name: string, req: Attrs): Promise<Reply> {
    if (this.o.forward) {
      try {
        const reply = await this.o.forward(req);
        if (this.forwardFailing) say('info', 'tlsmgr: the real tlsmgr answers again; forwarding resumed');
        this.forwardFailing = false;
        return reply;
      } catch (err) {
        if (!this.forwardFailing)
          say('warn', `tlsmgr: cannot forward ${name} to the real tlsmgr (${String(err)}): answering as a disabled cache`);
        this.forwardFailing = true;
      }
    }
    return disabledReply(name, req);
  }
}

/**
 * The store key: a digest of the cache type and Postfix's serverid, nothing added (the serverid
 * is the whole trust decision Postfix made); the readable head of the serverid for people.
 */
export function keyOf(cacheType: string, serverid: string): CacheKey {
  const id = createHash('sha256').update(`postfix-tlsmgr/1\0${cacheType}\0${serverid}`, 'latin1').digest('hex');
  const head = serverid.split('&', 1)[0];
  return { id, short: id.slice(0, 12), destination: printable(head) };
}
