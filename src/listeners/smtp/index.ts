import { hostname } from 'node:os';
import type { SmtpListenerConfig } from '../../config/smtp-schema.js';
import { admission } from '../../net/admission.js';
import { poolLimits } from '../../net/idle-pool.js';
import { TcpListener } from '../../net/tcp-listener.js';
import { refusalLine } from '../../smtp/replies.js';
import { ConnectionCache } from '../../smtp/connection-cache.js';
import { Router } from '../../smtp/routing.js';
import { serveSmtp } from '../../smtp/server-session.js';
import type { Submission } from '../../smtp/spool/resubmit.js';
import { SpoolStore } from '../../smtp/spool/store.js';
import { SpoolWorker } from '../../smtp/spool/worker.js';
import type { ListenerFactory } from '../listener.js';

/**
 * The `type: smtp` listener: a smarthost. TcpListener does bind, allow list (refused clients get
 * 554), connection limit and shutdown; on stop, idle clients are told 421 at once instead of
 * waiting out their idle timeout.
 */
export const create: ListenerFactory<SmtpListenerConfig> = (l, deps) => {
  // Reads CA and password files now: a bad path fails at start, not on the first message.
  const values = deps.values;
  const router = new Router(l, {
    dns: deps.dns,
    mtaSts: deps.mtaSts,
    kv: { get: (k) => values.value(k), set: (k, v, ttl) => values.setValue(k, v, ttl) },
    audit: deps.audit,
  });
  const name = l.hostname ?? hostname();
  const t = l.timeouts;
  const session = {
    listener: l.name,
    protocol: l.protocol,
    maxNextHops: l.maxNextHops,
    hostname: name,
    maxMessageSize: l.maxMessageSize,
    maxLineLength: l.maxLineLength,
    maxRecipients: l.maxRecipients,
    idleMs: t.idleSeconds * 1000,
    dataMs: t.dataSeconds * 1000,
    minDataRate: t.minDataRate,
    logAddresses: l.logAddresses,
    audit: deps.audit,
    router,
    upstream: {
      heloName: name,
      dial: { listener: l.name, cache: deps.cache, audit: deps.audit, keys: deps.keys },
      connectMs: t.connectSeconds * 1000,
      replyMs: t.replySeconds * 1000,
      dataDoneMs: t.dataDoneSeconds * 1000,
      setupMs: t.setupSeconds * 1000,
      rcptBudgetMs: t.rcptBudgetSeconds * 1000,
    },
  };
  const draining = new AbortController();
  const connections = new ConnectionCache({ ...poolLimits(l.connectionCache), probeMs: l.connectionCache.probeSeconds * 1000 });
  // The spool hands its messages back to this listener: it is reached where it is bound.
  const submitTo = (): Submission => {
    const at = listener.address();
    const host = at.address === '0.0.0.0' ? '127.0.0.1' : at.address === '::' ? '::1' : at.address;
    return { host, port: at.port, heloName: name, timeoutMs: (Math.max(t.rcptBudgetSeconds, t.dataDoneSeconds) + 60) * 1000 };
  };
  const spool =
    l.spool &&
    new SpoolWorker(new SpoolStore(l.spool.dir), {
      listener: l.name,
      hostname: name,
      retryMs: l.spool.retrySeconds * 1000,
      maxAgeMs: l.spool.maxAgeSeconds * 1000,
      submitTo,
      audit: deps.audit,
    });
  const listener: TcpListener = new TcpListener({
    ...admission(l, deps.audit),
    // A client may send `.` and QUIT, then its FIN: the reply to the dot must still reach it, or
    // it retries a message the next hop already took (a duplicate).
    allowHalfOpen: true,
    serve: (socket) => serveSmtp(socket, { ...session, draining: draining.signal, connections, ...(spool ? { spool } : {}) }),
    refuse: (socket, why) => socket.write(refusalLine(why, name)),
    drain: () => draining.abort(),
    started: () => spool?.start(),
    stopped: async () => {
      await spool?.stop();
      await connections.close();
    },
    upstreamPool: connections,
  });
  return listener;
};
