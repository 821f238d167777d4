import { InvalidArgumentError } from 'commander';
import { loadConfig } from '../config/load.js';
import { parseListen } from '../net/listen-address.js';

export interface HealthFlags {
  url?: string;
  config?: string;
  timeout: string;
}

export const DEFAULT_READYZ = 'http://127.0.0.1:9464/readyz';

/**
 * `ticketbooth health`: GET /readyz of a running ticketbooth; exit 0 when it answers 200, 1 on
 * anything else (503, no answer, timeout). Meant for a container HEALTHCHECK.
 */
export async function healthCommand(f: HealthFlags): Promise<number> {
  const timeoutMs = Number(f.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    throw new InvalidArgumentError(`--timeout: expected milliseconds, not "${f.timeout}"`);
  const url = f.url ?? (f.config ? adminUrl(f.config, '/readyz') : DEFAULT_READYZ);
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

/** A URL on a config's admin listener (a wildcard bind is reached on loopback). */
export function adminUrl(file: string, path: string): string {
  const admin = loadConfig(file).admin;
  if (!admin) throw new Error(`${file}: no admin section, so nothing to probe`);
  const { host: bound, port } = parseListen(admin.listen);
  // A wildcard bind is probed on its loopback.
  const host = bound === '0.0.0.0' || bound === '' ? '127.0.0.1' : bound === '::' ? '::1' : bound;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;
}
