import type { AddressInfo } from 'node:net';
import type { Config, ListenerConfig } from '../config/schema.js';
import { configureOperatorLog, say } from '../util/operator-log.js';

/** What a reload did, by listener name; `forgotten`: cached slots whose trust key no listener will use again. */
export interface ReloadSummary {
  kept: string[];
  added: string[];
  replaced: string[];
  removed: string[];
  forgotten: number;
  /** HOST:PORT by listener name: where each listener serves now, or for a removed one, served. */
  addresses: Record<string, string>;
  /** A worker's, instead of forgetting: the keys it would forget, and those its listeners still dial under. */
  keys?: { orphaned: string[]; inUse: string[] };
}

/**
 * What a reload may change in place, and what it must leave to a restart. Listeners, routes, TLS,
 * DNS, cache policy, log and shutdown settings are applied; the audit log, the admin listener and
 * the ticket store are what running sessions and the fleet share, and the worker count is the
 * process layout, so changing them needs a restart.
 */
export function restartNeeded(current: Config, next: Config): string | undefined {
  const changed: string[] = [];
  if (json(current.audit) !== json(next.audit)) changed.push('audit');
  if (json(current.admin) !== json(next.admin)) changed.push('admin');
  if (json(current.cache.store) !== json(next.cache.store)) changed.push('cache.store');
  if (json(current.tlsmgr) !== json(next.tlsmgr)) changed.push('tlsmgr');
  if (json(current.workers) !== json(next.workers)) changed.push('workers');
  return changed.length > 0 ? `${changed.join(', ')} changed: that needs a restart (nothing was reloaded)` : undefined;
}

/** The settings every listener is built with: when they change, every listener is rebuilt. */
export function sharedSettings(c: Config): string {
  return json([c.cache, c.dns, c.mtaSts]);
}

/** A listener kept as it runs: its own config and the shared settings are unchanged. */
export function unchanged(a: ListenerConfig, b: ListenerConfig, sharedSame: boolean): boolean {
  return sharedSame && json(a) === json(b);
}

/** Fields that say who may connect and how long things may take, not which upstream is trusted how. */
const NOT_TRUST = new Set([
  'name',
  'listen',
  'allow',
  'maxConnections',
  'maxConnectionsPerClient',
  'timeouts',
  'logAddresses',
  'connectionCache',
]);
const NOT_TRUST_SMTP = new Set(['maxMessageSize', 'maxLineLength', 'maxRecipients', 'protocol', 'maxNextHops', 'spool']);

/**
 * The part of a listener's config its trust keys come from (upstreams, routes, TLS settings). When
 * it changes, or the listener goes, the keys the listener dialled under are orphaned.
 */
export function trustSection(l: ListenerConfig): string {
  const kept = Object.entries(l).filter(([k]) => !NOT_TRUST.has(k) && !(l.type === 'smtp' && NOT_TRUST_SMTP.has(k)));
  return json(Object.fromEntries(kept));
}

/** A reload's outcome in one line for a person: `reloaded: added mx on 127.0.0.1:25; kept relay on 127.0.0.1:10025`. */
export function reloadLine(s: ReloadSummary): string {
  const part = (what: string, names: string[], where: string): string =>
    names.length ? `${what} ${names.map((n) => `${n} ${where} ${s.addresses[n] ?? '?'}`).join(', ')}` : '';
  const parts = [
    part('added', s.added, 'on'),
    part('replaced', s.replaced, 'on'),
    part('removed', s.removed, 'was on'),
    part('kept', s.kept, 'on'),
  ];
  return `reloaded: ${parts.filter(Boolean).join('; ')}${s.forgotten ? `; ${s.forgotten} orphaned cache slots dropped` : ''}`;
}

/**
 * A reload from `source` (the config file read again) through `reload`; its outcome in one line for
 * a person, also said on stderr with what asked for it (`trigger`): whoever reads the server's log
 * sees every reload, and the address of each listener it added, however it was asked for.
 */
export async function reloadFromSource(
  trigger: string,
  source: (() => Config) | undefined,
  reload: (next: Config) => Promise<ReloadSummary>,
  where = '',
): Promise<string> {
  try {
    if (!source) throw new Error('started without a config file: nothing to reload');
    const next = source();
    const line = `${reloadLine(await reload(next))}${where}`;
    configureOperatorLog(next.log);
    say('info', `${trigger}: ${line}`);
    return line;
  } catch (err) {
    say('error', `${trigger}: config not reloaded, the running one stays: ${(err as Error).message}`);
    throw err;
  }
}

/** A queue: each step starts once the one before has settled, in call order; a failed one does not stop the next. */
export function oneAtATime(): <T>(step: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return (step) => {
    const run = last.then(step);
    last = run.catch(() => undefined);
    return run;
  };
}

/** HOST:PORT of a bound socket, an IPv6 host in brackets. */
export function addressText(a: AddressInfo): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

function json(v: unknown): string {
  return JSON.stringify(v) ?? '';
}
