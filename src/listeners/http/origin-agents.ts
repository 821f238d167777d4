import type { Agent, ClientRequest, ClientRequestArgs } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { emptyPoolStats, pastLimits, type IdlePoolLimits } from '../../net/idle-pool.js';
import type { UpstreamPoolView } from '../../net/tcp-listener.js';
import { dialTls, type DialContext, type UpstreamTls } from '../../upstream/tls-dialer.js';
import { keyOf, type TlsTarget } from '../../upstream/tls-target.js';
import { http } from '../../util/node-http.js';

/** Origin agents remembered before unused ones are forgotten. */
const MAX_AGENTS = 1000;

/**
 * Upstream connections kept alive between requests, one keep-alive Agent per origin trust key
 * (host, port, SNI, CA, verification, versions: the resumption cache's key, so a connection is
 * never reused where the trust decision could differ). Node's Agent does the keeping: a socket is
 * free only after a complete response that allows keep-alive, and is guarded while idle; the
 * connections themselves come from the core dialer, so they resume and write their audit line.
 * The idle, age, use and count limits are the listener's `connectionCache`.
 */
export class OriginAgents implements UpstreamPoolView {
  readonly stats = emptyPoolStats();
  private readonly agents = new Map<string, OriginAgent>();

  constructor(
    readonly limits: IdlePoolLimits,
    private readonly dial: DialContext,
  ) {}

  /** The agent for `target`'s trust key, with a connection ready for the request (dialed now unless one is free). */
  async ready(target: TlsTarget): Promise<Agent> {
    const key = keyOf(target).id;
    let agent = this.agents.get(key);
    if (!agent) {
      if (this.agents.size >= MAX_AGENTS) this.forgetUnused();
      agent = new OriginAgent(target, this.dial, this);
      this.agents.set(key, agent);
    }
    await agent.ready();
    return agent;
  }

  get idle(): number {
    let n = 0;
    for (const a of this.agents.values()) n += a.idle;
    return n;
  }

  /** Agents with no connection, open or kept: a proxy for many origins must not keep one per origin ever seen. */
  private forgetUnused(): void {
    for (const [key, agent] of this.agents) if (agent.unused) this.agents.delete(key);
  }

  /** Closes every kept connection (the listener is stopping; its sessions are over). */
  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}

class OriginAgent extends http.Agent {
  /** Dialed for a request before it was forwarded, so that a failed handshake could be reported; taken by createConnection. */
  private readonly handoff: UpstreamTls[] = [];
  private readonly opened = new WeakMap<Duplex, number>();
  private readonly uses = new WeakMap<Duplex, number>();
  private readonly watched = new WeakSet<Duplex>();

  constructor(
    private readonly target: TlsTarget,
    private readonly dial: DialContext,
    private readonly all: OriginAgents,
  ) {
    // lifo: the most recently used connection first, so the others reach their idle limit.
    super({ keepAlive: true, scheduling: 'lifo' });
  }

  get idle(): number {
    let n = 0;
    for (const list of Object.values(this.freeSockets)) n += list?.length ?? 0;
    return n;
  }

  /** No connection open or kept, none being handed over. */
  get unused(): boolean {
    return this.idle === 0 && this.handoff.length === 0 && Object.values(this.sockets).every((l) => !l?.length);
  }

  /** Dials now unless a kept connection is free: the caller reports a failed handshake (502 with the reason). */
  async ready(): Promise<void> {
    if (this.idle > 0) return;
    const upstream = await dialTls(this.target, this.dial);
    this.handoff.push(upstream);
    // Unused if a kept connection came free meanwhile and no later request needs a new one.
    setTimeout(() => {
      const at = this.handoff.indexOf(upstream);
      if (at >= 0) void this.handoff.splice(at, 1)[0].close();
    }, this.all.limits.idleMs).unref();
  }

  override createConnection(_options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | undefined {
    const ready = this.handoff.shift();
    if (ready) return this.born(ready.socket);
    dialTls(this.target, this.dial).then(
      (u) => callback?.(null, this.born(u.socket)),
      (err: Error) => callback?.(err, undefined as never),
    );
    return undefined;
  }

  /** After a complete keep-alive response: kept within the limits, else the Agent closes it. */
  override keepSocketAlive(socket: Duplex): boolean {
    const limits = this.all.limits;
    if (!limits.enabled) return false;
    if (pastLimits(limits, performance.now() - (this.opened.get(socket) ?? 0), this.uses.get(socket) ?? 1)) {
      this.all.stats.retired++;
      return false;
    }
    if (this.idle >= limits.maxIdlePerHop || this.all.idle >= limits.maxIdle) {
      this.all.stats.evicted++;
      return false;
    }
    const s = socket as Socket;
    s.setKeepAlive(true, 1000); // Node's Agent default keepAliveMsecs
    s.unref();
    s.setTimeout(limits.idleMs);
    if (!this.watched.has(socket)) {
      this.watched.add(socket);
      // The Agent closes a free socket on its timeout: that is the idle limit.
      s.on('timeout', () => {
        if (Object.values(this.freeSockets).some((l) => l?.includes(s))) this.all.stats.expired++;
      });
    }
    this.all.stats.pooled++;
    return true;
  }

  override reuseSocket(socket: Duplex, request: ClientRequest): void {
    this.uses.set(socket, (this.uses.get(socket) ?? 1) + 1);
    this.all.stats.reused++;
    (socket as Socket).setTimeout(0); // the idle limit is for idle time only
    super.reuseSocket(socket, request);
  }

  private born(socket: Duplex): Duplex {
    this.opened.set(socket, performance.now());
    return socket;
  }
}
