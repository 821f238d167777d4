import type { AddressInfo } from 'node:net';
import type { AdminServer } from './admin/admin-server.js';
import { AuditLog } from './audit/audit-log.js';
import type { Config, ListenerConfig } from './config/schema.js';
import type { Listener, ListenerDeps, ListenerFactory } from './listeners/listener.js';
import { createStore } from './resumption/create-store.js';
import { ResumptionCache } from './resumption/policy.js';

type Loader<C> = () => Promise<{ create: ListenerFactory<C> }>;

/**
 * One factory per listener type; each type's folder under listeners/ holds all of it. Loaded when
 * a config uses the type: an unused one costs no memory (proxy-chain alone is ~13 MiB of RSS).
 */
const factories: { [T in ListenerConfig['type']]: Loader<Extract<ListenerConfig, { type: T }>> } = {
  tunnel: () => import('./listeners/tunnel/index.js'),
  smtp: () => import('./listeners/smtp/index.js'),
  http: () => import('./listeners/http/index.js'),
};

async function buildListener<C extends ListenerConfig>(l: C, deps: ListenerDeps): Promise<Listener> {
  const { create } = await (factories[l.type] as Loader<C>)();
  return create(l, deps);
}

/** A running ticketbooth: its listeners, the shared resumption cache and the audit log. */
export class Service {
  readonly listeners: Listener[] = [];
  /** The admin listener (/metrics, /healthz, /readyz), when configured. */
  admin: AdminServer | undefined;

  private constructor(
    readonly config: Config,
    readonly cache: ResumptionCache,
    readonly audit: AuditLog,
  ) {}

  static async start(config: Config, audit = new AuditLog(config.audit)): Promise<Service> {
    const store = await createStore(config.cache);
    const cache = new ResumptionCache(store, config.cache);
    const service = new Service(config, cache, audit);
    try {
      for (const l of config.listeners) {
        let listener: Listener;
        try {
          listener = await buildListener(l, { cache, audit, dns: config.dns });
          await listener.start();
        } catch (err) {
          throw new Error(`listener ${l.name}: ${(err as Error).message}`, { cause: err });
        }
        service.listeners.push(listener);
      }
      if (config.admin) {
        // Loaded only when configured: prom-client and its dependencies are ~5 MiB of RSS.
        const { startAdmin } = await import('./admin/start-admin.js');
        service.admin = await startAdmin(config.admin, { audit, store, listeners: service.listeners, listenerConfigs: config.listeners });
      }
    } catch (err) {
      await service.stop(0);
      throw err;
    }
    return service;
  }

  addressOf(name: string): AddressInfo {
    const l = this.listeners.find((x) => x.name === name);
    if (!l) throw new Error(`no listener named ${name}`);
    return l.address();
  }

  private stopping?: Promise<void>;

  /**
   * Stop accepting, let sessions finish within the timeout, close the store and the log.
   * Idempotent: a second call (a second signal) waits for the first.
   */
  stop(timeoutMs = this.config.shutdownTimeoutSeconds * 1000): Promise<void> {
    this.stopping ??= this.shutdown(timeoutMs);
    return this.stopping;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.admin?.drain();
    await Promise.all(this.listeners.map((l) => l.stop(timeoutMs)));
    await this.admin?.stop();
    await this.cache.store.close();
    await this.audit.close();
  }
}
