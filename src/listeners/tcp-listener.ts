import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { AuditLog } from '../audit/audit-log.js';
import type { RefusalReason } from '../audit/events.js';
import { AllowList } from './allow-list.js';
import { listenOn } from './listen-address.js';

export interface TcpListenerOptions {
  name: string;
  listen: string;
  allow: readonly string[];
  maxConnections: number;
  /** Open connections one client address may hold (Postfix's smtpd_client_connection_count_limit). */
  maxConnectionsPerClient: number;
  audit: AuditLog;
  /** Serves one admitted client; resolves when the session is over. */
  serve(socket: Socket): Promise<void>;
  /**
   * Keep writing to a client that has half-closed (sent its FIN): a byte-stream relay must, or a
   * reply to a client that shuts down its sending side after the request is lost. Default false.
   */
  allowHalfOpen?: boolean;
  /** What a refused client gets before the close (SMTP sends 554 or 421); default nothing. */
  refuse?(socket: Socket, reason: RefusalReason): void;
}

/** The admission part of a listener's config (every listener type has these keys). */
export function admission(
  l: { name: string; listen: string; allow: readonly string[]; maxConnections: number; maxConnectionsPerClient?: number },
  audit: AuditLog,
): Pick<TcpListenerOptions, 'name' | 'listen' | 'allow' | 'maxConnections' | 'maxConnectionsPerClient' | 'audit'> {
  // Default: no one address takes more than half the slots (100 → 50, Postfix's per-client default).
  const perClient = l.maxConnectionsPerClient ?? Math.ceil(l.maxConnections / 2);
  return { name: l.name, listen: l.listen, allow: l.allow, maxConnections: l.maxConnections, maxConnectionsPerClient: perClient, audit };
}

/** Longer than the dialer's close grace (2 s), so a cut session's upstream close completes. */
const CUT_SETTLE_MS = 3000;

/**
 * The part every listener shares: bind (loopback unless configured), admit only allowed clients,
 * bound the connection count, and on shutdown stop accepting and let open sessions finish.
 */
export class TcpListener {
  private readonly server: Server;
  private readonly allow: AllowList;
  private readonly open = new Set<Socket>();
  /** Open connections per client address (entries leave at 0: the map is bounded by `open`). */
  private readonly perClient = new Map<string, number>();
  private readonly sessions = new Set<Promise<void>>();

  constructor(private readonly options: TcpListenerOptions) {
    this.allow = new AllowList(options.allow);
    this.server = createServer({ allowHalfOpen: options.allowHalfOpen ?? false }, (socket) => this.admit(socket));
  }

  get name(): string {
    return this.options.name;
  }

  get activeConnections(): number {
    return this.open.size;
  }

  start(): Promise<AddressInfo> {
    return listenOn(this.server, this.options.listen);
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** Stops accepting; waits for open sessions up to `timeoutMs`, then cuts the rest. */
  async stop(timeoutMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const drained = Promise.allSettled([...this.sessions]);
    await Promise.race([drained, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    for (const s of this.open) s.destroy();
    // Cut sessions still end their upstreams gracefully (late tickets, the audit line): let them
    // settle, briefly, before the caller closes the store and the log under them.
    let cutTimer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.sessions]), new Promise((resolve) => (cutTimer = setTimeout(resolve, CUT_SETTLE_MS)))]);
    clearTimeout(cutTimer);
    await closed;
  }

  private admit(socket: Socket): void {
    socket.on('error', () => undefined); // a reset client is not our error; sessions see 'close'
    const address = socket.remoteAddress;
    if (address === undefined) {
      // Reset before we got to it: nothing to serve, no address to name, and no refusal.
      this.options.audit.record({ event: 'client.gone', listener: this.options.name });
      socket.destroy();
      return;
    }
    const client = `${address}:${socket.remotePort}`;
    const reason: RefusalReason | undefined = !this.allow.allows(address)
      ? 'allow-list'
      : this.open.size >= this.options.maxConnections
        ? 'connection-limit'
        : (this.perClient.get(address) ?? 0) >= this.options.maxConnectionsPerClient
          ? 'client-limit'
          : undefined;
    if (reason) {
      this.options.audit.record({ event: 'client.refused', listener: this.options.name, client, reason });
      this.options.refuse?.(socket, reason);
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    this.open.add(socket);
    this.perClient.set(address, (this.perClient.get(address) ?? 0) + 1);
    const session = this.options
      .serve(socket)
      .catch(() => undefined)
      .finally(() => {
        this.open.delete(socket);
        const left = (this.perClient.get(address) ?? 1) - 1;
        if (left > 0) this.perClient.set(address, left);
        else this.perClient.delete(address);
        this.sessions.delete(session);
        if (!socket.destroyed) socket.destroy();
      });
    this.sessions.add(session);
  }
}
