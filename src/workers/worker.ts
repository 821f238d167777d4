import { AuditLog } from '../audit/audit-log.js';
import { Service } from '../service/service.js';
import { configureOperatorLog, say } from '../util/operator-log.js';
import { forwardEvents, remoteStore } from './cache-client.js';
import { Channel, type Port } from './channel.js';
import type { ListenerStats, PrimaryMethods, WorkerMethods } from './protocol.js';

/**
 * A worker process: the config's listeners, with the primary's ticket cache, audit file and
 * metrics. It takes orders (reload, stop) from its primary only; signals are the primary's to
 * handle (a terminal's Ctrl-C or a service manager signals the whole group).
 */
export async function runWorker(): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  const primary = new Channel<WorkerMethods, PrimaryMethods>(processPort(), 'the primary');
  const config = await primary.call('config');
  configureOperatorLog(config.log);
  const audit = new AuditLog({});
  const flush = forwardEvents(audit, primary);
  const service = await Service.start(config, audit, { store: remoteStore(primary, config.cache) });
  const exit = async (timeoutMs: number): Promise<void> => {
    await service.stop(timeoutMs);
    await flush();
    process.exit(0);
  };
  primary.serve({
    reload: async (next) => {
      const summary = await service.reload(next);
      configureOperatorLog(next.log);
      return summary;
    },
    stop: (timeoutMs) => void exit(timeoutMs),
    stats: () => listenerStats(service),
  });
  // The primary gone (killed): nobody is left to write its lines or hold its tickets; finish and go.
  process.once('disconnect', () => {
    say('warn', `worker ${process.pid}: the primary is gone; draining`);
    void exit(service.config.shutdownTimeoutSeconds * 1000);
  });
  await primary.call('ready');
}

function listenerStats(service: Service): ListenerStats[] {
  return service.listeners.map((l) => ({
    name: l.name,
    address: l.address(),
    activeConnections: l.activeConnections,
    ...(l.upstreamPool ? { pool: { stats: { ...l.upstreamPool.stats }, idle: l.upstreamPool.idle } } : {}),
  }));
}

function processPort(): Port {
  return {
    send: (message, callback) => void process.send?.(message, undefined, undefined, callback),
    on: (event, listener) => process.on(event, listener),
    once: (event, listener) => process.once(event, listener),
  };
}
