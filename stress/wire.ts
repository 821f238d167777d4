import { connect, type Socket } from 'node:net';
import { SmtpClosedError, SmtpTimeoutError, TicketboothError } from '../src/errors/index.js';
import { ReplyReader, type SmtpReply } from '../src/upstream/smtp-client/reply-reader.js';

/** What a read got: a reply, or why there was none. */
export type Heard = SmtpReply | 'closed' | 'timeout' | 'garbled';

export const codeOf = (h: Heard): number => (typeof h === 'string' ? 0 : h.code);
export const show = (h: Heard): string => (typeof h === 'string' ? h : h.raw.trimEnd().split('\r\n').at(-1)!.slice(0, 120));

/**
 * The campaign's client end of one TCP connection: raw bytes out, SMTP replies in, never a throw.
 * Unlike test/support/smtp-client.ts it connects without waiting for a greeting (so it can leave
 * before one), picks its source address (clients spread over 127.0.1.0/24, as many hosts would be),
 * and can end with a FIN or a RST.
 */
export class Wire {
  private readonly reader: ReplyReader;
  private isClosed = false;

  private constructor(readonly socket: Socket) {
    this.reader = new ReplyReader(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => (this.isClosed = true));
  }

  static open(port: number, source: string, timeoutMs = 15_000): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, localAddress: source });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${port} from ${source}: timeout`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new Wire(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  async read(timeoutMs = 15_000): Promise<Heard> {
    try {
      return await this.reader.read(timeoutMs);
    } catch (err) {
      if (!(err instanceof TicketboothError)) throw err;
      return err instanceof SmtpTimeoutError ? 'timeout' : err instanceof SmtpClosedError ? 'closed' : 'garbled';
    }
  }

  /** Writes and waits until the socket took it (back-pressure), or the connection is gone. */
  write(bytes: string | Buffer): Promise<void> {
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve();
    return new Promise((resolve) => {
      if (this.socket.write(bytes)) return resolve();
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  async cmd(line: string | Buffer, timeoutMs?: number): Promise<Heard> {
    await this.write(typeof line === 'string' ? `${line}\r\n` : Buffer.concat([line, CRLF]));
    return this.read(timeoutMs);
  }

  /**
   * `fin`: a normal close; `rst`: a reset (the abrupt end of a crashed or killed client). A reset
   * is only sent while our side is still open: on a socket already shutting down (the server
   * closed first, so Node sent our FIN), Node 24's resetAndDestroy() leaves a handle that never
   * closes, and the process then spins forever at exit.
   */
  close(how: 'fin' | 'rst' = 'fin'): void {
    if (how === 'rst' && !this.socket.writableEnded && !this.socket.destroyed) this.socket.resetAndDestroy();
    else this.socket.destroy();
  }

  /** Half-close: our side is done sending, replies may still come. */
  end(): void {
    this.socket.end();
  }

  waitClosed(timeoutMs: number): Promise<boolean> {
    if (this.isClosed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

const CRLF = Buffer.from('\r\n');

/** Client i's source address: 250 of them, so a per-client-address limit sees a few each. */
export function sourceAddress(i: number): string {
  return `127.0.1.${(i % 250) + 1}`;
}
