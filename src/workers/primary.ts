import cluster, { type Worker } from 'node:cluster';
import type { AdminServer } from '../admin/admin-server.js';
import { AuditLog } from '../audit/audit-log.js';
import type { Config } from '../config/schema.js';
import type { ListenerView } from '../listeners/listener.js';
import { oneAtATime, reloadFromSource, restartNeeded, sharedSettings, type ReloadSummary } from '../service/reload-plan.js';
import { shutdownInOrder, startSharedParts } from '../service/shared-parts.js';
import { createStore, type Store } from '../resumption/create-store.js';
import type { Resumption } from '../resumption/policy.js';
import type { TlsmgrServer } from '../tlsmgr/server.js';
import { say } from '../util/operator-log.js';
import { CacheService } from './cache-service.js';
import { Channel, type Port } from './channel.js';
import { WORKER_ENV, workerCount } from './count.js';
import { listenerViews } from './listener-views.js';
import { PROTOCOL, type PrimaryMethods, type WorkerMethods, type WorkerStats } from './protocol.js';
import { WorkerTrouble, type TroubleKind } from './trouble.js';

/** One worker process and the primary's side of its channel. */
interface Running {
  worker: Worker;
  channel: Channel<PrimaryMethods, WorkerMethods>;
  cache: CacheService;
  stats: WorkerStats;
  /** The config it was given or last reloaded. */
  config?: Config;
  /** Asked to stop (shutdown, replaced): its end is no crash. */
  leaving: boolean;
}

/** How long a scrape waits for a worker's stats; how long a worker may take to start serving. */
const STATS_TIMEOUT_MS = 1000;
const START_TIMEOUT_MS = 60_000;
/** Wait before a worker that ended unasked is started again, doubled after each failed start. */
const RESPAWN_DELAY_MS = 1000;
const RESPAWN_DELAY_MAX_MS = 30_000;
/** Past its drain timeout, how long a stopping worker has to end before it is killed. */
const KILL_GRACE_MS = 5000;

/**
 * The primary of `workers` above 1: it forks the workers that serve the listeners (they share each
 * listening socket; the kernel spreads the connections) and holds what they share, as Postfix's
 * tlsmgr does for its smtp processes: the one ticket cache and store (each ticket taken once,
 * whichever worker asks), the version order of mixed destinations, the audit file (one writer,
 * whole lines), the metrics, the tlsmgr socket and the admin listener. Reloads, rolling restarts
 * and drains go through it, one at a time.
 */
export class Primary {
  /** The configured listeners as the workers serve them, summed (metrics, readiness). */
  readonly listeners: ListenerView[] = [];
  admin: AdminServer | undefined;
  tlsmgr: TlsmgrServer | undefined;
  configSource?: () => Config;
  /** Workers serving (their listeners bound), not leaving. */
  private readonly workers = new Set<Running>();
  /** Every worker not yet ended, serving, starting or leaving. */
  private readonly forked = new Set<Running>();
  private readonly trouble = new WorkerTrouble();
  /** Reloads, catch-ups and rolling restarts: one at a time. */
  private readonly queue = oneAtATime();
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

  get cache(): Resumption {
    return this.resumption;
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
      primary.listeners.push(...primary.views(config));
      const workers = {
        refresh: () => primary.refresh(),
        running: () => primary.workers.size,
        trouble: () => primary.trouble.counts(),
        auditDropped: () => [...primary.forked].reduce((n, r) => n + r.stats.auditDropped, 0),
      };
      Object.assign(primary, await startSharedParts(primary, store.health, workers));
    } catch (err) {
      await primary.stop(0);
      throw err;
    }
    return primary;
  }

  /** Forks a worker; resolves once its listeners are bound, rejects if it ends (or is stopped) before. */
  private spawn(): Promise<Running> {
    const worker = cluster.fork({ [WORKER_ENV]: '1' });
    const name = `worker ${worker.process.pid ?? worker.id}`;
    const r: Running = {
      worker,
      channel: new Channel(workerPort(worker), name, (what) => this.said('channel', what)),
      cache: new CacheService({ cache: () => this.resumption, store: this.store, audit: this.audit }),
      stats: { listeners: [], auditDropped: 0 },
      leaving: false,
    };
    this.forked.add(r);
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        this.said('start-failed', `${name} not serving within ${START_TIMEOUT_MS} ms: killed`);
        worker.process.kill('SIGKILL');
      }, START_TIMEOUT_MS);
      r.channel.serve({
        ...r.cache.methods(),
        config: (protocol) => {
          if (protocol !== PROTOCOL) {
            throw new Error(`this worker speaks protocol ${protocol}, its primary ${PROTOCOL}: new code needs a full restart, not SIGUSR2`);
          }
          return (r.config = this.current);
        },
        ready: (stats) => {
          clearTimeout(timer);
          r.stats = stats;
          settled = true;
          if (this.stopping || r.leaving) return reject(new Error('shutting down'));
          this.workers.add(r);
          resolve(r);
          // Given the config before a reload changed it: bring it to what the others run.
          if (r.config !== this.current) this.catchUp(r);
        },
      });
      worker.once('exit', (code, signal) => {
        clearTimeout(timer);
        r.cache.releaseAll();
        this.workers.delete(r);
        this.forked.delete(r);
        if (!settled) reject(new Error(`${name} ended (${signal ?? code}) before its listeners were bound; its error is above`));
        else if (!r.leaving && !this.stopping) this.respawn(`${name} ended unasked (${signal ?? code})`, RESPAWN_DELAY_MS);
      });
    });
  }

  private said(kind: TroubleKind, what: string): void {
    this.trouble.add(kind);
    say('error', what);
  }

  /** Starts a worker in place of one gone, after `delayMs`; a failed start tries again later. */
  private respawn(why: string, delayMs: number): void {
    this.said('restarted', `${why}; starting another in ${delayMs} ms`);
    setTimeout(() => {
      if (this.stopping) return;
      this.spawn().catch((err: unknown) => {
        if (!this.stopping)
          this.respawn(`starting a worker failed: ${(err as Error).message}`, Math.min(2 * delayMs, RESPAWN_DELAY_MAX_MS));
      });
    }, delayMs).unref();
  }

  private catchUp(r: Running): void {
    // Queued with the reloads, and reading the config in force when its turn comes.
    this.queue(async () => {
      if (!this.workers.has(r) || r.config === this.current) return;
      await r.channel.call('reload', this.current);
      r.config = this.current;
    }).catch((err: unknown) => this.said('channel', `${nameOf(r)} started during a reload and refused the new config: ${String(err)}`));
  }

  /** Every worker's latest stats (one that does not answer in time keeps its last). */
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
      () => [...this.workers].map((r) => r.stats.listeners),
    );
  }

  /** As Service.reload: checked here, then applied by each worker in turn. */
  reload(next: Config): Promise<ReloadSummary> {
    return this.queue(() => this.apply(next));
  }

  reloadFromSource(trigger: string): Promise<string> {
    return reloadFromSource(trigger, this.configSource, (next) => this.reload(next), ` (in each of ${this.workers.size} workers)`);
  }

  private async apply(next: Config): Promise<ReloadSummary> {
    if (this.stopping) throw new Error('shutting down: not reloading');
    const why = restartNeeded(this.current, next);
    if (why) throw new Error(why);
    const cache = sharedSettings(this.current) === sharedSettings(next) ? this.resumption : this.resumption.withOptions(next.cache);
    const [first] = this.workers;
    if (!first) throw new Error('no worker is serving');
    // The first worker's reload fails before it changes anything (as a single process's does): then none has changed.
    const summary = await first.channel.call('reload', next);
    first.config = next;
    [this.current, this.resumption] = [next, cache];
    const keys = [summary.keys];
    // Every worker serving now, those that became ready meanwhile on the older config too.
    for (const r of [...this.workers]) {
      if (r.config === next) continue;
      try {
        keys.push((await r.channel.call('reload', next)).keys);
        r.config = next;
      } catch (err) {
        if (r.leaving || !this.workers.has(r)) continue; // ended meanwhile: its replacement starts on `next`
        // Rare (a file gone between two workers' reads): a fresh worker takes the new config from here.
        this.said('channel', `${nameOf(r)}: reload failed (${(err as Error).message}); replacing it`);
        await this.replace(r);
      }
    }
    this.listeners.splice(0, this.listeners.length, ...this.views(next));
    await this.refresh();
    const { keys: _, ...said } = summary;
    return { ...said, forgotten: await this.forgetOrphans(keys) };
  }

  /** The keys some worker's departed listeners dialled under and no worker's listener still does: forgotten once. */
  private async forgetOrphans(reports: ReadonlyArray<ReloadSummary['keys']>): Promise<number> {
    const inUse = new Set(reports.flatMap((k) => k?.inUse ?? []));
    const orphaned = [...new Set(reports.flatMap((k) => k?.orphaned ?? []))].filter((id) => !inUse.has(id));
    for (const id of orphaned) await this.resumption.forget(id);
    return orphaned.length;
  }

  /** A rolling restart (SIGUSR2): each worker in turn is replaced by a new one (new code on disk too), then drains. */
  restartWorkers(): Promise<void> {
    return this.queue(async () => {
      for (const r of [...this.workers]) {
        if (this.stopping) return;
        await this.replace(r);
      }
    });
  }

  /** A new worker for `r`; once it serves, `r` drains. If the new one fails to start, `r` serves on. */
  private async replace(r: Running): Promise<void> {
    if (r.leaving || r.worker.isDead()) return;
    await this.spawn();
    void this.retire(r, this.current.shutdownTimeoutSeconds * 1000);
  }

  /** Asks a worker to drain and waits for its end, its last audit lines in; one that does not end in time is killed. */
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
    const timer = setTimeout(() => {
      this.said(
        'killed',
        `${nameOf(r)} did not end within ${timeoutMs + KILL_GRACE_MS} ms of its stop: killed (its last audit lines may be lost)`,
      );
      r.worker.process.kill('SIGKILL');
    }, timeoutMs + KILL_GRACE_MS);
    await Promise.all([ended, disconnected]);
    clearTimeout(timer);
  }

  /** As Service.stop: /readyz 503, the drain delay, every worker drains, then the shared parts close. */
  stop(timeoutMs = this.current.shutdownTimeoutSeconds * 1000): Promise<void> {
    this.stopping ??= shutdownInOrder(
      { admin: this.admin, tlsmgr: this.tlsmgr, health: this.store.health, audit: this.audit },
      this.current.drainDelaySeconds * 1000,
      timeoutMs,
      () => Promise.all([...this.forked].map((r) => this.retire(r, timeoutMs))),
    );
    return this.stopping;
  }
}

function nameOf(r: Running): string {
  return `worker ${r.worker.process.pid ?? r.worker.id}`;
}

function workerPort(worker: Worker): Port {
  return {
    send: (message, callback) => void worker.send(message as never, undefined, undefined, callback),
    on: (event, listener) => worker.on(event, listener),
    once: (event, listener) => worker.once(event, listener),
  };
}
