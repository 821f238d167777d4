import type { AddressInfo } from 'node:net';
import type { AuditLog } from '../audit/audit-log.js';
import type { DnsConfig, MtaStsConfig } from '../config/smtp-schema.js';
import type { UpstreamPoolView } from '../net/tcp-listener.js';
import type { KeyLedger } from '../resumption/key-ledger.js';
import type { Resumption } from '../resumption/policy.js';
import type { SharedValues } from '../resumption/store.js';

/**
 * What the service needs of any listener: start, report its address and load, stop gracefully.
 * Every listener type is a TcpListener (src/net/) with its own way of serving a client.
 */
export interface Listener {
  readonly name: string;
  readonly activeConnections: number;
  /** Upstream connections shared by the listener's sessions (the SMTP connection cache), if any. */
  readonly upstreamPool?: UpstreamPoolView | undefined;
  start(): Promise<AddressInfo>;
  address(): AddressInfo;
  /** Stops accepting; open sessions may finish within `timeoutMs`, the rest are cut. */
  stop(timeoutMs: number): Promise<void>;
  /** On a reload: new clients go to `successor` (same address and type) from now on, on this bound socket. */
  handOver(successor: Listener): void;
  /** On a reload: stop accepting (unless handed over) and let open sessions finish on their own settings. */
  retire(): Promise<void>;
}

/** What metrics and readiness read of a listener: a worker's primary sums its workers' into one of these. */
export type ListenerView = Pick<Listener, 'name' | 'activeConnections' | 'upstreamPool' | 'address'>;

/** What the service shares with every listener it builds. */
export interface ListenerDeps {
  cache: Resumption;
  /** Values shared beside the tickets (MTA-STS policies). */
  values: SharedValues;
  audit: AuditLog;
  /** The resolver settings for MX routing (the config's `dns` section). */
  dns: DnsConfig;
  /** How MTA-STS policies are fetched (the config's `mtaSts` section). */
  mtaSts: MtaStsConfig;
  /** This listener's own record of the trust keys it dials under. */
  keys: KeyLedger;
}

/**
 * Each listener type's folder exports one of these as `create`: it turns the listener's config
 * into runtime settings once (files read, seconds in milliseconds), so a bad file fails the start.
 */
export type ListenerFactory<C> = (config: C, deps: ListenerDeps) => Listener;
