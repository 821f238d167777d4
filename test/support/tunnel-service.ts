import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { AuditEvent, HandshakeEvent } from '../../src/audit/events.js';
import { parseConfig } from '../../src/config/load.js';
import { Service } from '../../src/service/service.js';

export interface TunnelHarness {
  service: Service;
  /** The tunnel listener's port on 127.0.0.1. */
  port: number;
  /** Every audit event so far, in order. */
  events: AuditEvent[];
  handshakes(): HandshakeEvent[];
  /** Resolves once `count` events match (already seen ones count), or fails after the timeout. */
  waitFor(match: (e: AuditEvent) => boolean, count?: number, timeoutMs?: number): Promise<AuditEvent[]>;
  /** The JSON-lines audit file (complete after stop()). */
  auditFile: string;
  /** Stops the service, sessions cut after `timeoutMs` (once; later calls wait for the same stop). */
  stop(timeoutMs?: number): Promise<void>;
}

export interface TunnelSetup {
  /** The listener's `upstream` section (host and port at least). */
  upstream: Record<string, unknown> & { host: string; port: number };
  cache?: Record<string, unknown>;
  allow?: string[];
  name?: string;
  /** The listener's `timeouts` section. */
  timeouts?: { setupSeconds?: number; idleSeconds?: number };
  /** An admin listener (/metrics) on an ephemeral loopback port. */
  admin?: boolean;
}

/** Starts ticketbooth through `Service.start(config)` with one tunnel listener on an ephemeral port. */
export async function startTunnelService(setup: TunnelSetup): Promise<TunnelHarness> {
  const auditFile = join(mkdtempSync(join(tmpdir(), 'tb-audit-')), 'audit.jsonl');
  const config = parseConfig(
    JSON.stringify({
      listeners: [
        {
          name: setup.name ?? 'tunnel',
          type: 'tunnel',
          listen: '127.0.0.1:0',
          ...(setup.allow ? { allow: setup.allow } : {}),
          upstream: setup.upstream,
          ...(setup.timeouts ? { timeouts: setup.timeouts } : {}),
        },
      ],
      cache: setup.cache ?? {},
      audit: { file: auditFile },
      ...(setup.admin ? { admin: { listen: '127.0.0.1:0' } } : {}),
      shutdownTimeoutSeconds: 5,
    }),
    'test config',
  );
  const audit = new AuditLog(config.audit);
  const events: AuditEvent[] = [];
  const waiters = new Set<() => void>();
  audit.on('event', (e) => {
    events.push(e);
    for (const w of [...waiters]) w();
  });
  const service = await Service.start(config, audit);
  let stopped: Promise<void> | undefined;
  const waitFor = (match: (e: AuditEvent) => boolean, count = 1, timeoutMs = 10_000): Promise<AuditEvent[]> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const hits = events.filter(match);
        if (hits.length >= count) {
          clearTimeout(timer);
          waiters.delete(check);
          resolve(hits);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`waited ${timeoutMs} ms for ${count} audit events; saw ${events.filter(match).length}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return {
    service,
    port: service.listeners[0].address().port,
    events,
    handshakes: () => events.filter((e): e is HandshakeEvent => e.event === 'tls.handshake'),
    waitFor,
    auditFile,
    stop: (timeoutMs = 2000) => (stopped ??= service.stop(timeoutMs)),
  };
}

export const isHandshake = (e: AuditEvent): e is HandshakeEvent => e.event === 'tls.handshake';
