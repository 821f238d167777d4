import type { AdminServer } from '../admin/admin-server.js';
import type { AdminDeps } from '../admin/start-admin.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Config } from '../config/schema.js';
import type { Resumption } from '../resumption/policy.js';
import type { StoreHealth } from '../resumption/store.js';
import type { TlsmgrServer } from '../tlsmgr/server.js';

/** What one ticketbooth serves beside its listeners, once per host: in the process itself, or in the primary of its workers. */
export interface SharedParts {
  tlsmgr: TlsmgrServer | undefined;
  admin: AdminServer | undefined;
}

/**
 * The tlsmgr socket and the admin listener, each loaded only when configured (prom-client and its
 * dependencies are ~5 MiB of RSS). tlsmgr uses `cache()`: the one in force after a reload too.
 * Whatever started is closed again if a later part fails.
 */
export async function startSharedParts(
  config: Config,
  deps: Omit<AdminDeps, 'store'> & { cache: () => Resumption; health: StoreHealth },
): Promise<SharedParts> {
  const parts: SharedParts = { tlsmgr: undefined, admin: undefined };
  try {
    if (config.tlsmgr) {
      const { listenTlsmgr } = await import('../tlsmgr/command.js');
      parts.tlsmgr = await listenTlsmgr({ ...config.tlsmgr, cache: deps.cache, audit: deps.audit });
    }
    if (config.admin) {
      const { startAdmin } = await import('../admin/start-admin.js');
      parts.admin = await startAdmin(config.admin, { ...deps, store: deps.health });
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
