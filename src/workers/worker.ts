import { AuditLog } from '../audit/audit-log.js';
import { Service } from '../service/service.js';
import { configureOperatorLog, say } from '../util/operator-log.js';
import { remoteStore } from './cache-client.js';
import { forwardEvents } from './event-forwarder.js';
import { Channel, type Port } from './channel.js';
import { WORKER_ENV } from './count.js';
import { PROTOCOL, type PrimaryMethods, type WorkerMethods, type WorkerStats } from './protocol.js';

/** The primary's signals: a terminal's Ctrl-C or `systemctl kill` reach the whole group, and only the primary acts on them. */
const PRIMARYS_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR2'] as const;

/**
 * A worker process: the config's listeners, with the primary's ticket cache, audit file and
 * metrics. It takes orders (reload, stop) from its primary only.
 */
export async function runWorker(): Promise<void> {
  if (!process.send) throw new Error(`${WORKER_ENV} is set, but this process has no primary (a primary sets it for its workers)`);
  for (const signal of PRIMARYS_SIGNALS) process.on(signal, () => undefined);
  const primary = new Channel<WorkerMethods, PrimaryMethods>(processPort(), 'the primary', (what) => say('error', what));
  const audit = new AuditLog({});
  const events = forwardEvents(audit, primary);
  let service: Service | undefined = undefined; // set once started; a stop may come before
  let leaving = false;
  const exit = async (timeoutMs: number): Promise<void> => {
    if (leaving) return;
    leaving = true;
    await service?.stop(timeoutMs); // closes the audit log once its lines are made
    await events.flush();
    process.exit(0);
  };
  // Served before anything starts: a stop may come while this worker is still starting.
  primary.serve({ stop: (timeoutMs) => void exit(timeoutMs) });
  // The primary gone (killed): nobody is left to write its lines or hold its tickets; finish and go.
  process.once('disconnect', () => {
    say('warn', `worker ${process.pid}: the primary is gone; draining`);
    void exit((service?.config.shutdownTimeoutSeconds ?? 0) * 1000);
  });
  const config = await primary.call('config', PROTOCOL);
  configureOperatorLog(config.log);
  const running = await Service.start(config, audit, { store: remoteStore(primary, config.cache) });
  service = running;
  primary.serve({
    reload: async (next) => {
      const summary = await running.reload(next);
      configureOperatorLog(next.log);
      return summary;
    },
    stats: () => workerStats(running, events.dropped()),
  });
  if (!leaving) await primary.call('ready', workerStats(running, events.dropped()));
}

function workerStats(service: Service, auditDropped: number): WorkerStats {
  return {
    listeners: service.listeners.map((l) => ({
      name: l.name,
      address: l.address(),
      activeConnections: l.activeConnections,
      ...(l.upstreamPool ? { pool: { stats: { ...l.upstreamPool.stats }, idle: l.upstreamPool.idle } } : {}),
    })),
    auditDropped,
  };
}

function processPort(): Port {
  return {
    send: (message, callback) => void process.send?.(message, undefined, undefined, callback),
    on: (event, listener) => process.on(event, listener),
    once: (event, listener) => process.once(event, listener),
  };
}
