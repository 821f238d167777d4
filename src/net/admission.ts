import type { AuditLog } from '../audit/audit-log.js';
import type { RefusalReason } from '../audit/events.js';
import { AllowList } from './allow-list.js';

/** Who may connect and how many at once: the keys every listener type has in its config. */
export interface AdmissionOptions {
  name: string;
  listen: string;
  allow: readonly string[];
  maxConnections: number;
  /** Open connections one client address may hold (Postfix's smtpd_client_connection_count_limit). */
  maxConnectionsPerClient: number;
  audit: AuditLog;
}

/** The admission part of a listener's config (its defaults, per-client included, are the schema's). */
export function admission(l: Omit<AdmissionOptions, 'audit'>, audit: AuditLog): AdmissionOptions {
  const { name, listen, allow, maxConnections, maxConnectionsPerClient } = l;
  return { name, listen, allow, maxConnections, maxConnectionsPerClient, audit };
}

/**
 * The gate of one listener: the allow list, the connection limit and the per-client limit. A client
 * let in holds a slot until it is released; the per-client map only holds addresses with a slot.
 */
export class Gate {
  private readonly allow: AllowList;
  private readonly perClient = new Map<string, number>();
  private open = 0;

  constructor(private readonly options: Pick<AdmissionOptions, 'allow' | 'maxConnections' | 'maxConnectionsPerClient'>) {
    this.allow = new AllowList(options.allow);
  }

  /** Why `address` may not come in now; undefined when it may, and then it holds a slot. */
  enter(address: string): RefusalReason | undefined {
    if (!this.allow.allows(address)) return 'allow-list';
    if (this.open >= this.options.maxConnections) return 'connection-limit';
    const held = this.perClient.get(address) ?? 0;
    if (held >= this.options.maxConnectionsPerClient) return 'client-limit';
    this.open++;
    this.perClient.set(address, held + 1);
    return undefined;
  }

  /** Gives back the slot `enter` granted. */
  leave(address: string): void {
    this.open--;
    const left = (this.perClient.get(address) ?? 1) - 1;
    if (left > 0) this.perClient.set(address, left);
    else this.perClient.delete(address);
  }
}
