import { InvalidArgumentError } from 'commander';
import { loadFoundConfig } from '../config/config-search.js';
import type { Config } from '../config/schema.js';
import { parseListen } from '../net/listen-address.js';
import { isBound, listeningSockets } from './listening-sockets.js';

export interface HealthFlags {
  url?: string;
  config?: string;
  timeout: string;
}

/**
 * `ticketbooth health`: GET /readyz of a running ticketbooth; exit 0 when it answers 200, 1 on
 * anything else (503, no answer, timeout). Meant for a container HEALTHCHECK.
 *
 * With a config (`--config`, or the one found as `serve` finds it) that has no `admin` section there is no /readyz to ask. Failing
 * then would mark every such container unhealthy for good (and have Swarm or an autoheal restart it
 * forever) for a choice of config, not a fault; so the command checks, without connecting, that
 * each listener's port is bound in this network namespace (where the HEALTHCHECK runs), says that
 * this is the weaker check and how to get the real one, and exits 0 or 1 on that.
 */
export async function healthCommand(f: HealthFlags): Promise<number> {
  const timeoutMs = Number(f.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    throw new InvalidArgumentError(`--timeout: expected milliseconds, not "${f.timeout}"`);
  let url = f.url;
  if (!url) {
    // The config found as `serve` finds it (config-search.ts), so a bare `health` checks what a bare `serve` runs.
    const { file, config } = loadFoundConfig(f.config);
    if (!config.admin) return listenersBound(config, file);
    url = adminUrl(config.admin.listen, '/readyz');
  }
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.text()).trim();
    process.stdout.write(`${url}: ${res.status} ${body}\n`);
    return res.status === 200 ? 0 : 1;
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    process.stdout.write(`${url}: ${e.cause?.code ?? e.name}: ${e.cause ? String((e.cause as Error).message ?? e.cause) : e.message}\n`);
    return 1;
  }
}

/** A URL on an admin listener (a wildcard bind is reached on its loopback). */
export function adminUrl(listen: string, path: string): string {
  const { host: bound, port } = parseListen(listen);
  const host = bound === '0.0.0.0' || bound === '' ? '127.0.0.1' : bound === '::' ? '::1' : bound;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;
}

/** Without an admin listener: 0 when every listener of `config` has a listening socket, else 1. */
function listenersBound(config: Config, file: string): number {
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  out(
    `${file} has no admin section, so there is no /readyz to probe; checking only that each listener is bound ` +
      '(add `admin: { listen: 0.0.0.0:9464 }` for the readiness check)',
  );
  const sockets = listeningSockets();
  if (!sockets) {
    out('cannot read /proc/net/tcp here, so nothing can be checked without an admin listener');
    return 1;
  }
  let missing = 0;
  for (const l of config.listeners) {
    const { host, port } = parseListen(l.listen);
    const bound = isBound(host, port, sockets);
    if (!bound) missing++;
    out(`${l.name} ${l.listen}: ${bound ? 'listening' : 'nothing listening'}`);
  }
  return missing === 0 ? 0 : 1;
}
