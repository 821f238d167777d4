import { readFileSync } from 'node:fs';
import { AuditLog } from '../audit/audit-log.js';
import { cacheSchema, type CacheConfig } from '../config/schema.js';
import { createStore } from '../resumption/create-store.js';
import type { Resumption } from '../resumption/policy.js';
import type { StoreHealth } from '../resumption/store.js';
import { exitWhenStopped, say } from '../util/operator-log.js';
import { forwarderTo } from './forward.js';
import { TlsmgrHandler } from './handler.js';
import { TlsmgrServer } from './server.js';

export interface TlsmgrFlags {
  socket: string;
  forward?: string;
  reuse: string;
  store: string;
  redisUrl?: string;
  auditLog?: string;
  /** The user owning the socket; Postfix's mail_owner. */
  owner: string;
}

export interface RunningTlsmgr {
  server: TlsmgrServer;
  store: StoreHealth;
  audit: AuditLog;
  stop(): Promise<void>;
}

/** The `cache` section the flags stand for, validated like a config file's. */
export function cacheFromFlags(f: TlsmgrFlags): CacheConfig {
  const store = f.store === 'redis' ? { type: 'redis', url: f.redisUrl } : { type: f.store };
  return cacheSchema.parse({ reuse: f.reuse, store });
}

export interface TlsmgrSetup {
  socket: string;
  forward?: string;
  owner?: string;
  cache: CacheConfig;
  audit: AuditLog;
}

/** Serves Postfix's tlsmgr protocol on `socket` with ticketbooth's cache behind it. */
export async function startTlsmgr(s: TlsmgrSetup): Promise<RunningTlsmgr> {
  const { resumption: cache, health: store } = await createStore(s.cache);
  let server: TlsmgrServer;
  try {
    server = await listenTlsmgr({ ...s, cache: () => cache });
  } catch (err) {
    await store.close();
    throw err;
  }
  return {
    server,
    store,
    audit: s.audit,
    stop: async () => {
      await server.close();
      await store.close();
    },
  };
}

/** The socket on a cache that already runs (`serve` with a `tlsmgr` section shares the listeners' cache). */
export async function listenTlsmgr(s: {
  socket: string;
  forward?: string;
  owner?: string;
  cache: () => Resumption;
  audit: AuditLog;
}): Promise<TlsmgrServer> {
  const handler = new TlsmgrHandler({
    cache: s.cache,
    audit: s.audit,
    ...(s.forward ? { forward: forwarderTo(s.forward) } : {}),
    sessionTimeoutSeconds: s.cache().options.maxAgeSeconds,
  });
  const owner = s.owner !== undefined ? ownerIds(s.owner) : undefined;
  return TlsmgrServer.listen(handler, { socket: s.socket, ...(owner ? { owner } : {}) });
}

/** `ticketbooth tlsmgr`: runs until SIGTERM or SIGINT; SIGHUP reopens the audit log. */
export async function tlsmgrCommand(f: TlsmgrFlags): Promise<void> {
  const audit = new AuditLog(f.auditLog ? { file: f.auditLog } : {});
  const cache = cacheFromFlags(f);
  const running = await startTlsmgr({ socket: f.socket, ...(f.forward ? { forward: f.forward } : {}), owner: f.owner, cache, audit });
  const stop = (signal: string): void => {
    say('info', `${signal}: closing ${f.socket}`);
    exitWhenStopped(running.stop().then(() => audit.close()));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    audit.reopen().catch((err: unknown) => say('error', `SIGHUP: reopening the audit log: ${String(err)}`));
  });
  const fwd = f.forward ? `, forwarding seed/tktkey/smtpd to ${f.forward}` : ', no forwarding (smtpd cache and tickets disabled)';
  say('info', `tlsmgr listening on ${f.socket} (reuse ${cache.reuse}, store ${cache.store.type}${fwd})`);
}

/** A user name (or uid) to the uid and gid the socket gets; only root may give it away. */
function ownerIds(user: string): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === user || l.split(':')[2] === user);
  if (!line) throw new Error(`--owner ${user}: no such user`);
  const [, , uid, gid] = line.split(':');
  const ids = { uid: Number(uid), gid: Number(gid) };
  if (process.getuid?.() !== 0) {
    if (process.getuid?.() !== ids.uid) say('warn', `--owner ${user}: not root, the socket stays owned by this process's user`);
    return undefined;
  }
  return ids;
}
