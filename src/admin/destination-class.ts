import type { ListenerConfig } from '../config/schema.js';
import { splitHostPort } from '../net/listen-address.js';

/**
 * Metric labels must stay few: a destination's label is its listener's configured upstream
 * (a tunnel's host:port, an SMTP relay or transport relay, an HTTP origin named in the config)
 * and otherwise a class: `mx` for destinations an SMTP listener found by MX lookup, `other`
 * for anything else. The set of values is bounded by the config, not by the traffic.
 */
export type DestinationClassifier = (listener: string, destination: string) => string;

export function destinationClassifier(listeners: readonly ListenerConfig[]): DestinationClassifier {
  const byListener = new Map<string, { fixed: Set<string>; fallback: string }>();
  for (const l of listeners) byListener.set(l.name, classesOf(l));
  return (listener, destination) => {
    const c = byListener.get(listener);
    if (!c) return 'other';
    if (c.fixed.has(destination) || c.fixed.has(hostOf(destination))) return destination;
    return c.fallback;
  };
}

function classesOf(l: ListenerConfig): { fixed: Set<string>; fallback: string } {
  const fixed = new Set<string>();
  switch (l.type) {
    case 'tunnel':
      fixed.add(`${l.upstream.host}:${l.upstream.port}`);
      return { fixed, fallback: 'other' };
    case 'smtp':
      for (const r of [l.route, ...Object.values(l.transport)]) if (r.mode === 'relay') fixed.add(`${r.host}:${r.port}`);
      return { fixed, fallback: l.route.mode === 'mx' || Object.values(l.transport).some((r) => r.mode === 'mx') ? 'mx' : 'other' };
    case 'http':
      for (const key of Object.keys(l.upstreams)) fixed.add(key);
      return { fixed, fallback: 'other' };
    default:
      return { fixed, fallback: 'other' };
  }
}

function hostOf(destination: string): string {
  return splitHostPort(destination)?.host || destination;
}
