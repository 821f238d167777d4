import type { Config, ListenerConfig } from './config/schema.js';

/**
 * What a reload may change in place, and what it must leave to a restart. Listeners, routes, TLS,
 * DNS, cache policy, log and shutdown settings are applied; the audit log, the admin listener and
 * the ticket store are what running sessions and the fleet share, so changing them needs a restart.
 */
export function restartNeeded(current: Config, next: Config): string | undefined {
  const changed: string[] = [];
  if (json(current.audit) !== json(next.audit)) changed.push('audit');
  if (json(current.admin) !== json(next.admin)) changed.push('admin');
  if (json(current.cache.store) !== json(next.cache.store)) changed.push('cache.store');
  if (json(current.tlsmgr) !== json(next.tlsmgr)) changed.push('tlsmgr');
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

function json(v: unknown): string {
  return JSON.stringify(v) ?? '';
}
