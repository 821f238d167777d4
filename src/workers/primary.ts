import cluster, { type Worker } from 'node:cluster';
import type { AdminServer } from '../admin/admin-server.js';
import { AuditLog } from '../audit/audit-log.js';
import type { Config } from '../config/schema.js';
import type { ListenerView } from '../listeners/listener.js';
import { oneAtATime, reloadFromSource, restartNeeded, sharedSettings, type ReloadSummary } from '../service/reload-plan.js';
import { createStore, type Store } from '../resumption/create-store.js';
import type { Resumption } from '../resumption/policy.js';
import type { TlsmgrServer } from '../tlsmgr/server.js';
import { say } from '../util/operator-log.js';
import { CacheService } from './cache-service.js';
import { Channel, type Port } from './channel.js';
import { WORKER_ENV, workerCount } from './count.js';
import { listenerViews } from './listener-views.js';
import type { ListenerStats, PrimaryMethods, WorkerMethods } from './protocol.js';

/** One worker process and the primary's side of its channel. */
interface Running {
  worker: Worker;
  channel: Channel<PrimaryMethods, WorkerMethods>;
  cache: CacheService;
  stats: ListenerStats[];
  /** Asked to stop (shutdown, rolling restart): its end is no crash. */
  leaving: boolean;
}

/** How long a scrape waits for a worker's stats, and a worker's start before it counts as failed. */
const STATS_TIMEOUT_MS = 1000;
/** Wait before a worker that ended unasked is started again (a crash loop stays slow). */
const RESPAWN_DELAY_MS = 1000;

/**
 * The primary of `workers` above 1: it forks the workers that serve the listeners (they share each
 * listening socket; the kernel spreads the connections) and holds what they share, as Postfix's
 * tlsmgr does for its smtp processes: the one ticket cache and store (each ticket taken once,
 * whichever worker asks), the version order of mixed destinations, the audit file (one writer,
 * whole lines), the metrics, the tlsmgr socket and the admin listener. Reload, drain and rolling
 * restart go through it.
 */
export class Primary {
  /** The configured listeners as the workers serve them, summed (metrics, readiness). */
  readonly listeners: ListenerView[] = [];
  admin: AdminServer | undefined;
  tlsmgr: TlsmgrServer | undefined;
  configSource?: () => Config;
  /** Workers serving (their listeners bound). */
  private readonly workers = new Set<Running>();
  /** Every worker not yet ended, serving or still starting. */
  private readonly forked = new Set<Running>();
  private restarts = 0;
  private readonly reloads = oneAtATime();
  private stopping?: Promise<void>;

  private constructor(
    private current: Config,
    private resumption: Resumption,
    private readonly store: Omit<Store, 'resumption'>,
    readonly audit: AuditLog,
  ) {}

  get config(): Config {
    return this.current;
  }

  get workerCount(): number {
    return this.workers.size;
  }

  static async start(config: Config, audit = new AuditLog(config.audit)): Promise<Primary> {
    const { resumption, ...store } = await createStore(config.cache);
    const primary = new Primary(config, resumption, store, audit);
    // Each worker accepts on the shared sockets itself: no hand-off of every connection through here.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ serialization: 'advanced' });
    try {
      await Promise.all(Array.from({ length: workerCount(config.workers) }, () => primary.spawn()));
      await primary.refresh();
      primary.listeners.push(...primary.views(config));
      await primary.startShared(config);
    } catch (err) {
      await primary.stop(0);
      throw err;
    }
    return primary;
  }

  /** The tlsmgr socket and the admin listener, as a single process serves them. */
  private async startShared(config: Config): Promise<void> {
    if (config.tlsmgr) {
      const { listenTlsmgr } = await import('../tlsmgr/command.js');
      this.tlsmgr = await listenTlsmgr({ ...config.tlsmgr, cache: () => this.resumption, audit: this.audit });
    }
    if (config.admin) {
      const { startAdmin } = await import('../admin/start-admin.js');
      this.admin = await startAdmin(config.admin, {
        audit: this.audit,
        store: this.store.health,
        listeners: this.listeners,
        listenerConfigs: () => this.current.listeners,
        reload: () => this.reloadFromSource('ticketbooth reload (POST /reload)'),
        workers: { refresh: () => this.refresh(), running: () => this.workers.size, restarts: () => this.restarts },
      });
    }
  }

  /** Forks a worker; resolves once its listeners are bound, rejects if it ends before. */
  private spawn(): Promise<Running> {
    const worker = cluster.fork({ [WORKER_ENV]: '1' });
    const r: Running = {
      worker,
      channel: new Channel(workerPort(worker), `worker ${worker.process.pid ?? worker.id}`),
      cache: new CacheService({ cache: () => this.resumption, store: this.store, audit: this.audit }),
      stats: [],
      leaving: false,
    };
    this.forked.add(r);
    return new Promise((resolve, reject) => {
      let bound = false;
      let given: Config | undefined;
      r.channel.serve({
        ...r.cache.methods(),
        config: () => (given = this.current),
        ready: () => {
          bound = true;
          this.workers.add(r);
          resolve(r);
          // A reload while it started: it runs what it was given; bring it to what the others run.
          if (given !== this.current) this.catchUp(r);
        },
      });
      worker.once('exit', (code, signal) => {
        r.cache.releaseAll();
        this.workers.delete(r);
        this.forked.delete(r);
        if (!bound) reject(new Error(`a worker ended (${signal ?? code}) before its listeners were bound; its error is above`));
        else if (!r.leaving && !this.stopping) this.respawn(worker, signal ?? String(code));
      });
    });
  }

  private catchUp(r: Running): void {
    // Queued with the reloads, and reading the config in force when its turn comes.
    this.reloads(() => r.channel.call('reload', this.current)).catch((err: unknown) => {
      say('error', `worker ${r.worker.process.pid ?? r.worker.id} started during a reload and refused the new config: ${String(err)}`);
    });
  }

  private respawn(worker: Worker, how: string): void {
    this.restarts++;
    say('error', `worker ${worker.process.pid ?? worker.id} ended unasked (${how}); starting another in ${RESPAWN_DELAY_MS} ms`);
    setTimeout(() => {
      if (this.stopping) return;
      this.spawn().catch((err: unknown) => say('error', `starting a worker again: ${(err as Error).message}`));
    }, RESPAWN_DELAY_MS).unref();
  }

  /** Every worker's latest listener stats (one that does not answer in time keeps its last). */
  async refresh(): Promise<void> {
    await Promise.all(
      [...this.workers].map(async (r) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), STATS_TIMEOUT_MS)));
        const stats = await Promise.race([r.channel.call('stats').catch(() => undefined), late]);
        clearTimeout(timer);
        if (stats) r.stats = stats;
      }),
    );
  }

  private views(config: Config): ListenerView[] {
    return listenerViews(
      config.listeners.map((l) => l.name),
      () => [...this.workers].map((r) => r.stats),
    );
  }

  /** As Service.reload: checked here, then applied by each worker in turn; one at a time. */
  reload(next: Config): Promise<ReloadSummary> {
    return this.reloads(() => this.apply(next));
  }

  reloadFromSource(trigger: string): Promise<string> {
    return reloadFromSource(trigger, this.configSource, (next) => this.reload(next), ` (in each of ${this.workers.size} workers)`);
  }

  private async apply(next: Config): Promise<ReloadSummary> {
    if (this.stopping) throw new Error('shutting down: not reloading');
    const why = restartNeeded(this.current, next);
    if (why) throw new Error(why);
    const cache = sharedSettings(this.current) === sharedSettings(next) ? this.resumption : this.resumption.withOptions(next.cache);
    const [first, ...rest] = [...this.workers];
    if (!first) throw new Error('no worker is running');
    // The first worker's reload fails before it changes anything (as a single process's does): then none has changed.
    const summary = await first.channel.call('reload', next);
    [this.current, this.resumption] = [next, cache];
    for (const r of rest) {
      await r.channel.call('reload', next).catch((err: unknown) => {
        // Rare (a file gone between two workers' reads): a fresh worker takes the new config from here.
        say('error', `worker ${r.worker.process.pid ?? r.worker.id}: reload failed (${(err as Error).message}); replacing it`);
        return this.replace(r);
      });
    }
    await this.refresh();
    this.listeners.splice(0, this.listeners.length, ...this.views(next));
    return summary;
  }

  /** A rolling restart (SIGUSR2): each worker in turn is replaced by a new one (new code on disk too), then drains. */
  async restartWorkers(): Promise<void> {
    for (const r of [...this.workers]) await this.replace(r);
  }

  private async replace(r: Running): Promise<void> {
    await this.spawn();
    void this.retire(r, this.current.shutdownTimeoutSeconds * 1000);
  }

  /** Asks a worker to drain and waits for its end; one that does not end in time is killed. */
  private async retire(r: Running, timeoutMs: number): Promise<void> {
    r.leaving = true;
    this.workers.delete(r); // no longer asked for stats or reloads: its listeners are closing
    if (r.worker.isDead()) return;
    const ended = new Promise<void>((resolve) => r.worker.once('exit', () => resolve()));
    // Its lines reach us before its channel closes: wait for both.
    const disconnected = new Promise<void>((resolve) =>
      r.worker.isConnected() ? r.worker.once('disconnect', () => resolve()) : resolve(),
    );
    void r.channel.note('stop', timeoutMs);
    const timer = setTimeout(() => r.worker.process.kill('SIGKILL'), timeoutMs + 5000);
    await Promise.all([ended, disconnected]);
    clearTimeout(timer);
  }

  /** As Service.stop: /readyz 503, the drain delay, then every worker drains; the shared parts close last. */
  stop(timeoutMs = this.current.shutdownTimeoutSeconds * 1000): Promise<void> {
    this.stopping ??= this.shutdown(timeoutMs);
    return this.stopping;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.admin?.drain();
    const delayMs = this.current.drainDelaySeconds * 1000;
    if (delayMs > 0 && timeoutMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    await Promise.all([...this.forked].map((r) => this.retire(r, timeoutMs)));
    await this.admin?.stop();
    await this.tlsmgr?.close();
    await this.store.health.close();
    await this.audit.close();
  }
}

function workerPort(worker: Worker): Port {
  return {
    send: (message, callback) => void worker.send(message as never, undefined, undefined, callback),
    on: (event, listener) => worker.on(event, listener),
    once: (event, listener) => worker.once(event, listener),
  };
}
