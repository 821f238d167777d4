import type { AddressInfo } from 'node:net';
import type { AdminServer } from '../admin/admin-server.js';
import { AuditLog } from '../audit/audit-log.js';
import type { Config, ListenerConfig } from '../config/schema.js';
import type { Listener, ListenerDeps, ListenerFactory } from '../listeners/listener.js';
import { createStore, type Store } from '../resumption/create-store.js';
import { shutdownInOrder, startSharedParts } from './shared-parts.js';
import { KeyLedger } from '../resumption/key-ledger.js';
import type { Resumption } from '../resumption/policy.js';
import type { TlsmgrServer } from '../tlsmgr/server.js';
import {
  addressText,
  oneAtATime,
  reloadFromSource,
  restartNeeded,
  sharedSettings,
  trustSection,
  unchanged,
  type ReloadSummary,
} from './reload-plan.js';

type Loader<C> = () => Promise<{ create: ListenerFactory<C> }>;

/**
 * One factory per listener type; each type's folder under listeners/ holds all of it. Loaded when
 * a config uses the type: an unused one costs no memory (proxy-chain alone is ~13 MiB of RSS).
 */
const factories: { [T in ListenerConfig['type']]: Loader<Extract<ListenerConfig, { type: T }>> } = {
  tunnel: () => import('../listeners/tunnel/index.js'),
  smtp: () => import('../listeners/smtp/index.js'),
  http: () => import('../listeners/http/index.js'),
};

async function buildListener<C extends ListenerConfig>(l: C, deps: ListenerDeps): Promise<Listener> {
  const { create } = await (factories[l.type] as Loader<C>)();
  return create(l, deps);
}

/** One running listener, the config it was built from and its record of trust keys. */
interface Entry {
  config: ListenerConfig;
  listener: Listener;
  keys: KeyLedger;
}

/** A running ticketbooth: its listeners, the shared resumption cache and the audit log. */
export class Service {
  /** The listeners serving now, in config order (a reload replaces the contents, not the array: metrics hold it). */
  readonly listeners: Listener[] = [];
  /** The admin listener (/metrics, /healthz, /readyz), when configured. */
  admin: AdminServer | undefined;
  /** Postfix's session cache socket (`tlsmgr` section), when configured. */
  tlsmgr: TlsmgrServer | undefined;
  private entries: Entry[] = [];
  /** Listeners a reload replaced whose sessions are still finishing. */
  private readonly retiring = new Set<Listener>();
  private readonly reloads = oneAtATime();
  /** Where a reload asked for by name (SIGHUP, `ticketbooth reload`) reads the new config; none for a command-line tunnel. */
  configSource?: () => Config;

  private constructor(
    private current: Config,
    private resumption: Resumption,
    /** The store's shared values (for listeners) and health (metrics, readiness, shutdown). */
    readonly store: Omit<Store, 'resumption'>,
    readonly audit: AuditLog,
  ) {}

  get config(): Config {
    return this.current;
  }

  get cache(): Resumption {
    return this.resumption;
  }

  /**
   * Starts the listeners, the tlsmgr socket and the admin listener as configured. A worker (`workers`
   * above 1) is given its primary's `store` and runs the listeners only: the primary serves tlsmgr and admin.
   */
  static async start(config: Config, audit = new AuditLog(config.audit), worker?: { store: Store }): Promise<Service> {
    const { resumption: cache, ...store } = worker?.store ?? (await createStore(config.cache));
    const service = new Service(config, cache, store, audit);
    service.isWorker = worker !== undefined;
    try {
      for (const c of config.listeners) {
        const entry = await service.build(c, config, cache);
        await bind(entry);
        service.entries.push(entry);
        service.listeners.push(entry.listener);
      }
      if (worker) return service;
      Object.assign(service, await startSharedParts(service, store.health));
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

  /**
   * Applies a new config without dropping a session: unchanged listeners go on as they are; a
   * changed one is rebuilt and takes over its predecessor's bound socket (same address and type)
   * or binds its own; the predecessor's open sessions finish on the settings they started with.
   * Everything that can fail (files, binds, what needs a restart) fails before anything changes:
   * the old config then keeps serving, and the error says why. One reload at a time.
   */
  reload(next: Config): Promise<ReloadSummary> {
    return this.reloads(() => this.apply(next));
  }

  /** A reload from `configSource`, said on stderr with its `trigger` (reload-plan.ts). */
  reloadFromSource(trigger: string): Promise<string> {
    return reloadFromSource(trigger, this.configSource, (next) => this.reload(next));
  }

  private async apply(next: Config): Promise<ReloadSummary> {
    if (this.stopping) throw new Error('shutting down: not reloading');
    const why = restartNeeded(this.current, next);
    if (why) throw new Error(why);
    const sharedSame = sharedSettings(this.current) === sharedSettings(next);
    const cache = sharedSame ? this.resumption : this.resumption.withOptions(next.cache);
    const before = new Map(this.entries.map((e) => [e.config.name, e]));
    const plan: Array<Entry & { kept: boolean; predecessor?: Entry }> = [];
    const leaving = new Set(this.entries);
    try {
      for (const c of next.listeners) {
        const old = before.get(c.name);
        if (old && unchanged(old.config, c, sharedSame)) {
          plan.push({ ...old, kept: true });
          leaving.delete(old);
          continue;
        }
        // Same upstreams and TLS: the new listener dials under the same keys, so it keeps the record.
        const carried = old && trustSection(old.config) === trustSection(c) ? old.keys : undefined;
        plan.push({ ...(await this.build(c, next, cache, carried)), kept: false });
      }
      for (const p of plan.filter((x) => !x.kept)) {
        const predecessor = [...leaving].find((o) => o.config.listen === p.config.listen && o.config.type === p.config.type);
        if (predecessor) {
          p.predecessor = predecessor;
          leaving.delete(predecessor);
        } else await bind(p);
      }
    } catch (err) {
      await Promise.all(plan.filter((p) => !p.kept).map((p) => p.listener.stop(0)));
      throw err;
    }

    // Nothing below fails: the new config is in force from here.
    const gone = this.entries.filter((e) => !plan.some((p) => p.kept && p.listener === e.listener));
    for (const p of plan) if (p.predecessor) p.predecessor.listener.handOver(p.listener);
    // Where each listener serves (a removed one: where it served): after the hand-overs, before the departed close.
    const addresses = Object.fromEntries([...gone, ...plan].map((e) => [e.config.name, addressText(e.listener.address())]));
    for (const e of gone) {
      this.retiring.add(e.listener);
      void e.listener.retire().finally(() => this.retiring.delete(e.listener));
    }
    const summary: ReloadSummary = {
      kept: plan.filter((p) => p.kept).map((p) => p.config.name),
      added: plan.filter((p) => !p.kept && !before.has(p.config.name)).map((p) => p.config.name),
      replaced: plan.filter((p) => !p.kept && before.has(p.config.name)).map((p) => p.config.name),
      removed: [...before.keys()].filter((n) => !plan.some((p) => p.config.name === n)),
      forgotten: 0,
      addresses,
    };
    const orphaned = orphanedKeys(gone, plan);
    this.entries = plan.map(({ config, listener, keys }) => ({ config, listener, keys }));
    this.listeners.splice(0, this.listeners.length, ...plan.map((p) => p.listener));
    this.current = next;
    this.resumption = cache;
    if (this.isWorker) {
      // Another worker's kept listener may have dialled one of these: the primary forgets what no worker uses.
      summary.keys = { orphaned, inUse: [...new Set(plan.flatMap((e) => [...e.keys.keys]))] };
      return summary;
    }
    for (const id of orphaned) await cache.forget(id);
    summary.forgotten = orphaned.length;
    return summary;
  }

  private async build(c: ListenerConfig, config: Config, cache: Resumption, keys?: KeyLedger): Promise<Entry> {
    const ledger = keys ?? new KeyLedger(config.cache.maxDestinations);
    try {
      return {
        config: c,
        listener: await buildListener(c, {
          cache,
          values: this.store.values,
          audit: this.audit,
          dns: config.dns,
          mtaSts: config.mtaSts,
          keys: ledger,
        }),
        keys: ledger,
      };
    } catch (err) {
      throw new Error(`listener ${c.name}: ${(err as Error).message}`, { cause: err });
    }
  }

  private stopping?: Promise<void>;
  private isWorker = false;

  /**
   * Stop accepting, let sessions finish within the timeout, close the store and the log.
   * Idempotent: a second call (a second signal) waits for the first.
   */
  stop(timeoutMs = this.current.shutdownTimeoutSeconds * 1000): Promise<void> {
    this.stopping ??= this.shutdown(timeoutMs);
    return this.stopping;
  }

  private shutdown(timeoutMs: number): Promise<void> {
    // A worker's primary has waited out the drain delay before it asked this one to stop.
    const delayMs = this.isWorker ? 0 : this.current.drainDelaySeconds * 1000;
    const parts = { admin: this.admin, tlsmgr: this.tlsmgr, health: this.store.health, audit: this.audit };
    return shutdownInOrder(parts, delayMs, timeoutMs, () =>
      Promise.all([...this.listeners, ...this.retiring].map((l) => l.stop(timeoutMs))),
    );
  }
}

async function bind(e: Entry): Promise<void> {
  try {
    await e.listener.start();
  } catch (err) {
    throw new Error(`listener ${e.config.name}: ${(err as Error).message}`, { cause: err });
  }
}

/** Keys only departed listeners dialled under, which no listener in force will use again. */
function orphanedKeys(gone: readonly Entry[], live: readonly Entry[]): string[] {
  const kept = new Set(live.map((e) => e.keys));
  const inUse = new Set(live.flatMap((e) => [...e.keys.keys]));
  return [...new Set(gone.filter((e) => !kept.has(e.keys)).flatMap((e) => [...e.keys.keys]))].filter((id) => !inUse.has(id));
}
