import type { AuditLog } from '../audit/audit-log.js';
import type { AdminConfig } from '../config/admin-schema.js';
import type { ListenerConfig } from '../config/schema.js';
import type { Listener } from '../listeners/listener.js';
import type { TicketStore } from '../resumption/store.js';
import { AdminServer, type Readiness } from './admin-server.js';
import { destinationClassifier } from './destination-class.js';
import { Metrics } from './metrics.js';

export interface AdminDeps {
  audit: AuditLog;
  store: TicketStore;
  listeners: readonly Listener[];
  listenerConfigs: readonly ListenerConfig[];
}

/** How long the store may take to answer before /readyz says it does not. */
const STORE_TIMEOUT_MS = 2000;

/** Metrics subscribed to the audit log, and the admin listener serving them. */
export async function startAdmin(config: AdminConfig, deps: AdminDeps): Promise<AdminServer> {
  const metrics = new Metrics({
    audit: deps.audit,
    store: deps.store,
    listeners: deps.listeners,
    classify: destinationClassifier(deps.listenerConfigs),
  });
  const admin = new AdminServer({ listen: config.listen, metrics, readiness: () => readiness(deps) });
  try {
    await admin.start();
  } catch (err) {
    metrics.close();
    throw new Error(`admin listener ${config.listen}: ${(err as Error).message}`, { cause: err });
  }
  return admin;
}

/**
 * Ready: every configured listener is bound. A ticket store that does not answer its ping is
 * *degraded*, not unready: connections still go through (full handshakes), and with one Redis
 * shared by a fleet, failing readiness would take every instance out of rotation at once.
 */
async function readiness(deps: AdminDeps): Promise<Readiness> {
  const problems: string[] = [];
  const degraded: string[] = [];
  for (const c of deps.listenerConfigs) {
    const l = deps.listeners.find((x) => x.name === c.name);
    const bound = l?.address();
    if (!bound || typeof bound.port !== 'number') problems.push(`listener ${c.name} not bound`);
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      deps.store.ping(),
      new Promise(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${STORE_TIMEOUT_MS} ms`)), STORE_TIMEOUT_MS)),
      ),
    ]);
  } catch (err) {
    degraded.push(`ticket store: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  return { ready: problems.length === 0, problems, degraded };
}
