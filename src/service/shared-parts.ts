import type { AdminServer } from '../admin/admin-server.js';
import type { AdminDeps } from '../admin/start-admin.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Config } from '../config/schema.js';
import type { ListenerView } from '../listeners/listener.js';
import type { Resumption } from '../resumption/policy.js';
import type { StoreHealth } from '../resumption/store.js';
import type { TlsmgrServer } from '../tlsmgr/server.js';

/** What one ticketbooth serves beside its listeners, once per host: in the process itself, or in the primary of its workers. */
export interface SharedParts {
  tlsmgr: TlsmgrServer | undefined;
  admin: AdminServer | undefined;
}

/** What the shared parts read of the process serving them (a Service, or a Primary), at the time they need it. */
export interface Host {
  readonly audit: AuditLog;
  /** The policy in force: a reload may replace it. */
  readonly cache: Resumption;
  readonly config: Config;
  readonly listeners: readonly ListenerView[];
  reloadFromSource(trigger: string): Promise<string>;
}

/**
 * The tlsmgr socket and the admin listener, each loaded only when configured (prom-client and its
 * dependencies are ~5 MiB of RSS). Whatever started is closed again if a later part fails.
 */
export async function startSharedParts(host: Host, health: StoreHealth, workers?: AdminDeps['workers']): Promise<SharedParts> {
  const config = host.config;
  const parts: SharedParts = { tlsmgr: undefined, admin: undefined };
  try {
    if (config.tlsmgr) {
      const { listenTlsmgr } = await import('../tlsmgr/command.js');
      parts.tlsmgr = await listenTlsmgr({ ...config.tlsmgr, cache: () => host.cache, audit: host.audit });
    }
    if (config.admin) {
      const { startAdmin } = await import('../admin/start-admin.js');
      parts.admin = await startAdmin(config.admin, {
        audit: host.audit,
        store: health,
        listeners: host.listeners,
        listenerConfigs: () => host.config.listeners,
        reload: () => host.reloadFromSource('ticketbooth reload (POST /reload)'),
        ...(workers ? { workers } : {}),
      });
    }
  } catch (err) {
    await parts.tlsmgr?.close();
    throw err;
  }
  return parts;
}

/**
 * The one shutdown order: `/readyz` says 503, the drain delay (a balancer stops sending), the
 * listeners or workers drain (`stopServing`), then the admin listener, tlsmgr, the store and the
 * audit log (which waits for the lines still being made) close.
 */
export async function shutdownInOrder(
  parts: SharedParts & { health: StoreHealth; audit: AuditLog },
  drainDelayMs: number,
  timeoutMs: number,
  stopServing: () => Promise<unknown>,
): Promise<void> {
  parts.admin?.drain();
  if (drainDelayMs > 0 && timeoutMs > 0) await new Promise((resolve) => setTimeout(resolve, drainDelayMs));
  await stopServing();
  await parts.admin?.stop();
  await parts.tlsmgr?.close();
  await parts.health.close();
  await parts.audit.close();
}
