import { chmodSync, chownSync, lstatSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { say } from '../util/operator-log.js';
import { ANNOUNCEMENT, type Attrs, AttrError, AttrReader, encodeAttrs, printable } from './attr0.js';
import type { TlsmgrHandler } from './handler.js';
import { failReply } from './requests.js';

export interface TlsmgrServerOptions {
  /** The socket path, `$queue_directory/private/<tlsmgr_service_name>`. */
  socket: string;
  /** uid/gid that own the socket (Postfix's mail_owner); unchanged when absent. */
  owner?: { uid: number; gid: number };
  /** Mode of the socket: only its owner (and root) may connect, as with Postfix's private sockets. */
  mode?: number;
  /** A request, or bytes waiting to become one, past this: error reply, connection closed. */
  maxRequestBytes?: number;
  /** A client connection idle this long is closed (smtp(8) drops its own after ipc_idle, 5 s). */
  idleTimeoutMs?: number;
  maxConnections?: number;
}

/**
 * The UNIX-domain socket Postfix's tls_mgr.c connects to. Each connection gets the protocol
 * announcement, then its requests are answered one at a time in order (the client waits for each
 * reply); connections are independent, so a slow or stuck client holds up only itself.
 */
/** Malformed-request lines on stderr: one per this long, the rest counted. */
const WARN_INTERVAL_MS = 60_000;

export class TlsmgrServer {
  private lastWarned = -Infinity;
  private suppressed = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Malformed or oversized requests seen (each answered with status -2, then the connection closed). */
  rejected = 0;

  private constructor(
    private readonly handler: TlsmgrHandler,
    private readonly o: TlsmgrServerOptions,
  ) {
    this.server = createServer((s) => this.serve(s));
    this.server.maxConnections = o.maxConnections ?? 1000;
  }

  get socketPath(): string {
    return this.o.socket;
  }

  static async listen(handler: TlsmgrHandler, o: TlsmgrServerOptions): Promise<TlsmgrServer> {
    await removeStaleSocket(o.socket);
    const t = new TlsmgrServer(handler, o);
    // Created unreachable (umask 0177), then given to its owner: no window in which others connect.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        t.server.once('error', reject);
        t.server.listen(o.socket, () => {
          t.server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(umask);
    }
    if (o.owner) chownSync(o.socket, o.owner.uid, o.owner.gid);
    chmodSync(o.socket, o.mode ?? 0o600);
    return t;
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    const reader = new AttrReader(this.o.maxRequestBytes ?? 64 * 1024);
    let queue: Promise<void> = Promise.resolve();
    let closing = false;
    socket.setTimeout(this.o.idleTimeoutMs ?? 60_000, () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.write(encodeAttrs(ANNOUNCEMENT));
    socket.on('data', (chunk: Buffer) => {
      if (closing) return;
      let lists: Attrs[];
      try {
        lists = reader.push(chunk);
      } catch (err) {
        if (!(err instanceof AttrError)) throw err;
        closing = true;
        this.rejected++;
        this.warnMalformed(err.message);
        // After the replies already due: the framing is lost, nothing further can be read.
        queue = queue.then(() => {
          socket.end(encodeAttrs(failReply(undefined)));
        });
        return;
      }
      for (const req of lists) {
        queue = queue.then(async () => {
          // The handler answers failures itself; this only guards the connection against a bug.
          const reply = await this.handler.handle(req).catch(() => failReply(req.get('request')));
          if (!socket.destroyed) socket.write(encodeAttrs(reply));
        });
      }
    });
  }

  /**
   * One stderr line a minute at most, with how many more came: a client sending garbage in a loop
   * must not flood the operator's log (each one is still refused, and counted in `rejected`).
   */
  private warnMalformed(why: string): void {
    const now = Date.now();
    if (now - this.lastWarned < WARN_INTERVAL_MS) {
      this.suppressed++;
      return;
    }
    const more = this.suppressed ? ` (and ${this.suppressed} more since the last such line)` : '';
    say('warn', `tlsmgr: malformed request (${printable(why)}): answered status -2, connection closed${more}`);
    this.lastWarned = now;
    this.suppressed = 0;
  }

  /** Stops accepting, closes open client connections (smtp(8) carries on without resumption) and removes the socket. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

/** A socket file left by a process that is gone is removed; one someone still listens on is an error. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // absent
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`${path}: another process serves this socket`);
  unlinkSync(path);
}
