import type { Socket } from 'node:net';

/**
 * Replies the client has not read yet, beyond which no further command is read: a client that
 * pipelines and never reads then costs this much, not a reply per command sent.
 */
const HIGH_WATER = 16 * 1024;

/**
 * The replies side of a client session. Replies are held while the client's pipelined commands
 * (RFC 2920) are still buffered and go out in one write when the session would wait for the
 * client (Postfix's smtpd flushes the same way), so a pipelined group costs one segment, not one
 * per reply. Progress is seen through write callbacks, not 'drain': a missed 'drain' was seen to
 * strand a session that the client was reading.
 */
export class ClientOutput {
  private waiter?: () => void;
  private readonly written = (): void => {
    if (this.waiter && this.socket.writableLength <= HIGH_WATER) this.waiter();
  };

  constructor(private readonly socket: Socket) {}

  send(text: string): void {
    if (this.socket.writable) this.socket.write(text, this.written);
  }

  /** Holds replies until flush(): the client has more commands waiting to be read. */
  hold(): void {
    if (!this.socket.writableCorked) this.socket.cork();
  }

  flush(): void {
    while (this.socket.writableCorked) this.socket.uncork();
  }

  /**
   * Back-pressure: resolves true once at most HIGH_WATER of replies wait unread (as a synchronous
   * server would read no command before its reply is taken); false, with the socket destroyed, when
   * the client read too little for `idleMs` (a 421 would only join the queue).
   */
  readByClient(idleMs: number): Promise<boolean> {
    const socket = this.socket;
    if (socket.writableLength <= HIGH_WATER) return Promise.resolve(true);
    this.flush();
    if (socket.writableLength <= HIGH_WATER) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        socket.off('close', closed);
        this.waiter = undefined;
        if (!ok) socket.destroy();
        resolve(ok);
      };
      const closed = (): void => done(false);
      const timer = setTimeout(() => done(false), idleMs);
      socket.once('close', closed);
      this.waiter = () => done(true);
    });
  }

  /**
   * Sends what is held and the FIN, and waits (at most `idleMs`) until the kernel has all of it:
   * destroying the socket earlier would drop the last replies, the QUIT's 221 among them.
   */
  end(idleMs: number): Promise<void> {
    this.flush();
    const socket = this.socket;
    if (socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        socket.off('finish', done);
        socket.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, idleMs);
      socket.once('finish', done);
      socket.once('close', done);
      if (socket.writableFinished) done();
      else if (!socket.writableEnded) socket.end();
    });
  }
}
