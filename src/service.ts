import type { AddressInfo } from 'node:net';
import type { AdminServer } from './admin/admin-server.js';
import { startAdmin } from './admin/start-admin.js';
import { AuditLog } from './audit/audit-log.js';
import type { Config, ListenerConfig } from './config/schema.js';
import type { DnsConfig } from './config/smtp-schema.js';
import { HttpEgressListener } from './listeners/http-egress.js';
import type { Listener } from './listeners/listener.js';
import { SmtpListener } from './listeners/smtp-listener.js';
import { admission, TcpListener } from './listeners/tcp-listener.js';
import { refusalLine } from './smtp/replies.js';
import { serveTunnel, tunnelOptionsFromConfig } from './listeners/tunnel.js';
import { ResumptionCache } from './resumption/policy.js';
import { createStore } from './resumption/create-store.js';
import { originResolver } from './upstream/http-origin.js';
import { targetFromConfig } from './upstream/target-from-config.js';

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
          listener = buildListener(l, { cache, audit, dns: config.dns });
          await listener.start();
        } catch (err) {
          throw new Error(`listener ${l.name}: ${(err as Error).message}`, { cause: err });
        }
        service.listeners.push(listener);
      }
      if (config.admin) {
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

interface ListenerDeps {
  cache: ResumptionCache;
  audit: AuditLog;
  dns?: DnsConfig;
}

/** One case per listener type; each type's session logic lives in its own module under listeners/. */
function buildListener(l: ListenerConfig, deps: ListenerDeps): Listener {
  const dial = { listener: l.name, cache: deps.cache, audit: deps.audit };
  switch (l.type) {
    case 'tunnel': {
      const tunnel = tunnelOptionsFromConfig(l, targetFromConfig(l.upstream), dial);
      return new TcpListener({
        ...admission(l, deps.audit),
        allowHalfOpen: true,
        serve: (socket) => serveTunnel(socket, tunnel),
        refuse: l.upstream.starttls === 'smtp' ? (s, why) => s.write(refusalLine(why)) : undefined,
      });
    }
    case 'smtp':
      return new SmtpListener(l, deps);
    case 'http':
      return new HttpEgressListener({ ...l, audit: deps.audit, dial, origins: originResolver(l) });
  }
}
