import type { AuditLog } from '../audit/audit-log.js';
import type { AdminConfig } from '../config/admin-schema.js';
import type { ListenerConfig } from '../config/schema.js';
import type { ListenerView } from '../listeners/listener.js';
import type { StoreHealth } from '../resumption/store.js';
import { AdminServer, type Readiness } from './admin-server.js';
import { destinationClassifier, type DestinationClassifier } from './destination-class.js';
import { Metrics, type WorkerFigures } from './metrics.js';

export interface AdminDeps {
  audit: AuditLog;
  store: StoreHealth;
  /** The running listeners (the service replaces its array's contents on a reload). */
  listeners: readonly ListenerView[];
  /** The listeners' configs as of now: a reload changes them. */
  listenerConfigs: () => readonly ListenerConfig[];
  /** POST /reload: re-read the config and apply it; resolves to what was done, rejects with why not. */
  reload: () => Promise<string>;
  /** With workers: their listeners' load fetched before a scrape, and their figures. */
  workers?: WorkerFigures & { refresh: () => Promise<void> };
}

/** How long the store may take to answer before /readyz says it does not. */
const STORE_TIMEOUT_MS = 2000;

/** Metrics subscribed to the audit log, and the admin listener serving them. */
export async function startAdmin(config: AdminConfig, deps: AdminDeps): Promise<AdminServer> {
  const metrics = new Metrics({
    audit: deps.audit,
    store: deps.store,
    listeners: deps.listeners,
    classify: currentClassifier(deps.listenerConfigs),
    ...(deps.workers ? { refresh: deps.workers.refresh, workers: deps.workers } : {}),
  });
  const admin = new AdminServer({ listen: config.listen, metrics, readiness: () => readiness(deps), reload: deps.reload });
  try {
    await admin.start();
  } catch (err) {
    metrics.close();
    throw new Error(`admin listener ${config.listen}: ${(err as Error).message}`, { cause: err });
  }
  return admin;
}

/** The metric labels of the config in force, rebuilt when a reload replaced it. */
function currentClassifier(configs: () => readonly ListenerConfig[]): DestinationClassifier {
  let basis: readonly ListenerConfig[] | undefined;
  let classify: DestinationClassifier = () => 'other';
  return (listener, destination) => {
    const now = configs();
    if (now !== basis) [basis, classify] = [now, destinationClassifier(now)];
    return classify(listener, destination);
  };
}

/**
 * Ready: every configured listener is bound. A ticket store that does not answer its ping is
 * *degraded*, not unready: connections still go through (full handshakes), and with one Redis
 * shared by a fleet, failing readiness would take every instance out of rotation at once.
 */
async function readiness(deps: AdminDeps): Promise<Readiness> {
  const problems: string[] = [];
  const degraded: string[] = [];
  for (const c of deps.listenerConfigs()) {
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
