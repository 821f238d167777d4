import type { AddressInfo } from 'node:net';
import type { ListenerView } from '../listeners/listener.js';
import type { ListenerStats } from './protocol.js';

/**
 * The primary's picture of each configured listener, summed over its workers' latest stats:
 * what metrics and readiness read. `latest` gives each worker's stats as last fetched.
 */
export function listenerViews(names: readonly string[], latest: () => Iterable<readonly ListenerStats[]>): ListenerView[] {
  const of = (name: string): ListenerStats[] => [...latest()].flatMap((all) => all.filter((s) => s.name === name));
  return names.map((name) => ({
    name,
    get activeConnections() {
      return of(name).reduce((n, s) => n + s.activeConnections, 0);
    },
    get upstreamPool() {
      const pools = of(name).flatMap((s) => (s.pool ? [s.pool] : []));
      if (pools.length === 0) return undefined;
      const stats: Record<string, number> = {};
      for (const p of pools) for (const [k, n] of Object.entries(p.stats)) stats[k] = (stats[k] ?? 0) + n;
      return { stats, idle: pools.reduce((n, p) => n + p.idle, 0) };
    },
    // Workers share each listener's socket: any one's address is the listener's.
    address: () => of(name)[0]?.address ?? ({} as AddressInfo),
  }));
}
