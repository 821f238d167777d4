import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { RefusalReason } from '../audit/events.js';
import { Gate, type AdmissionOptions } from './admission.js';
import { CUT_SETTLE_MS } from './grace.js';
import { listenOn } from './listen-address.js';

export interface TcpListenerOptions extends AdmissionOptions {
  /** Serves one admitted client; resolves when the session is over. */
  serve(socket: Socket): Promise<void>;
  /**
   * Keep writing to a client that has half-closed (sent its FIN): a byte-stream relay must, or a
   * reply to a client that shuts down its sending side after the request is lost. Default false.
   */
  allowHalfOpen?: boolean;
  /** What a refused client gets before the close (SMTP sends 554 or 421); default nothing. */
  refuse?(socket: Socket, reason: RefusalReason): void;
  /**
   * Called once when stop begins, before open sessions are awaited: tell idle clients to go
   * (SMTP's 421, an HTTP keep-alive connection's close) instead of waiting out their timeouts.
   */
  drain?(): void;
  /** Called once the listener takes clients: bound by start, or handed a predecessor's socket on a reload. */
  started?(): void;
  /** Called once when stop is over and every session has ended (close what sessions shared). */
  stopped?(): Promise<void>;
  /** Upstream connections the sessions share, for metrics. */
  upstreamPool?: UpstreamPoolView;
}

/** Counts of what happened to a listener's shared upstream connections, and how many wait idle now. */
export interface UpstreamPoolView {
  readonly stats: Readonly<Record<string, number>>;
  readonly idle: number;
}

/**
 * The part every listener shares: bind (loopback unless configured), admit only allowed clients,
 * bound the connection count, and on shutdown stop accepting and let open sessions finish.
 */
export class TcpListener {
  private server: Server;
  /** False once the bound socket was handed to a successor (a reload): closing it is no longer ours. */
  private ownsServer = true;
  private readonly gate: Gate;
  private readonly open = new Set<Socket>();
  private readonly sessions = new Set<Promise<void>>();

  constructor(private readonly options: TcpListenerOptions) {
    this.gate = new Gate(options);
    // No Nagle on any client: SMTP replies and relayed records are small writes the client answers;
    // holding one for a delayed ACK costs 40 ms per exchange (seen in a packet trace).
    this.server = createServer({ allowHalfOpen: options.allowHalfOpen ?? false, noDelay: true }, (socket) => this.admit(socket));
  }

  get name(): string {
    return this.options.name;
  }

  get activeConnections(): number {
    return this.open.size;
  }

  get upstreamPool(): UpstreamPoolView | undefined {
    return this.options.upstreamPool;
  }

  async start(): Promise<AddressInfo> {
    const at = await listenOn(this.server, this.options.listen);
    this.options.started?.();
    return at;
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /**
   * A reload's successor on the same address and type takes over this listener's bound socket:
   * new clients go to it from now on, with no moment the address is unbound (nothing refused).
   */
  handOver(successor: TcpListener): void {
    this.ownsServer = false;
    this.server.removeAllListeners('connection');
    this.server.on('connection', (socket: Socket) => successor.admit(socket));
    successor.server = this.server;
    successor.options.started?.();
  }

  /**
   * Ends a listener a reload replaced: no new clients (its socket closed, or handed over), and the
   * open sessions finish on the settings they started with, however long their protocol allows;
   * then what they shared is closed. `stop` still cuts them if the service shuts down meanwhile.
   */
  async retire(): Promise<void> {
    if (this.ownsServer) await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.allSettled([...this.sessions]);
    if (this.open.size === 0) await this.options.stopped?.();
  }

  /** Stops accepting; waits for open sessions up to `timeoutMs`, then cuts the rest. */
  async stop(timeoutMs: number): Promise<void> {
    const closed = this.ownsServer ? new Promise<void>((resolve) => this.server.close(() => resolve())) : Promise.resolve();
    this.options.drain?.();
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
    await this.options.stopped?.();
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
    const reason = this.gate.enter(address);
    if (reason) {
      const client = `${address}:${socket.remotePort}`;
      this.options.audit.record({ event: 'client.refused', listener: this.options.name, client, reason });
      this.options.refuse?.(socket, reason);
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    this.open.add(socket);
    const ended = (): void => {
      this.open.delete(socket);
      this.gate.leave(address);
      this.sessions.delete(session);
      if (!socket.destroyed) socket.destroy();
    };
    // One promise per session, not a catch and a finally: however it ends, the slot is given back.
    const session = this.options.serve(socket).then(ended, ended);
    this.sessions.add(session);
  }
}
