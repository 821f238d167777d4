import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { RequestError, Server as ProxyServer, type PrepareRequestFunctionOpts, type PrepareRequestFunctionResult } from 'proxy-chain';
import type { RefusalReason } from '../../audit/events.js';
import type { OriginResolver } from '../../upstream/http-origin.js';
import { withCertificateAdvice } from '../../errors/certificate-advice.js';
import { UpstreamError } from '../../errors/index.js';
import { errorCodeOf } from '../../upstream/error-code.js';
import { oneLine } from '../../util/text.js';
import type { OriginAgents } from './origin-agents.js';

export interface HttpProxyOptions {
  agents: OriginAgents;
  origins: OriginResolver;
}

/**
 * HTTP egress: a forward proxy for legacy clients (`http_proxy=http://127.0.0.1:8080`). A plain
 * `GET http://host/path` goes to the origin over TLS: proxy-chain parses and forwards the request,
 * over a kept-alive connection to that origin (OriginAgents) or a new one from the core dialer, so
 * the resumption cache and the `tls.handshake` audit line apply. A new connection's handshake
 * happens before the request is forwarded, so a failed one becomes a 502 that says why. CONNECT is refused: ticketbooth originates TLS, it does
 * not tunnel a client's TLS. Admission (allow list, connection limit, graceful stop) is the shared
 * TcpListener's; proxy-chain's HTTP server never listens itself, it is handed admitted sockets.
 */
export class HttpProxy {
  private readonly proxy: ProxyServer;
  /** Requests in progress per client connection: idle keep-alive connections close at stop. */
  private readonly busy = new Map<Socket, number>();
  private stopping = false;

  constructor(private readonly options: HttpProxyOptions) {
    this.proxy = new ProxyServer({ port: 0, prepareRequestFunction: (r) => this.prepare(r) });
    this.proxy.server.on('request', (req: IncomingMessage, res: ServerResponse) => this.track(req.socket, res));
  }

  /** Shutdown has begun: idle keep-alive connections close now, busy ones after their response. */
  drain(): void {
    this.stopping = true;
    for (const [socket, n] of this.busy) if (n === 0) socket.end();
  }

  /** Serves one admitted client connection (any number of requests); resolves when it closes. */
  serve(socket: Socket): Promise<void> {
    const closed = once(socket, 'close').then(() => undefined);
    this.busy.set(socket, 0);
    socket.once('close', () => this.busy.delete(socket));
    this.proxy.server.emit('connection', socket); // documented way to hand a socket to an http.Server
    return closed;
  }

  private track(socket: Socket, res: ServerResponse): void {
    this.busy.set(socket, (this.busy.get(socket) ?? 0) + 1);
    if (this.stopping) res.shouldKeepAlive = false;
    res.once('close', () => {
      const left = (this.busy.get(socket) ?? 1) - 1;
      if (this.busy.has(socket)) this.busy.set(socket, left);
      if (this.stopping && left === 0) socket.end();
    });
  }

  /** Per request: refuse CONNECT, else dial the origin over TLS and hand proxy-chain that socket. */
  private async prepare(r: PrepareRequestFunctionOpts): Promise<PrepareRequestFunctionResult> {
    if (!r.isHttp) {
      throw new RequestError(
        'ticketbooth: CONNECT is not supported. This proxy makes the TLS connection itself: ' +
          'send plain http:// URLs through it and it fetches them over https.\n',
        405,
        { Allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' },
      );
    }
    const url = new URL(r.request.url ?? '');
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1'); // IPv6 literals come bracketed
    const target = this.options.origins(host, url.port === '' ? undefined : Number(url.port));
    dropProxyConnection(r.request.rawHeaders);
    try {
      return { httpAgent: await this.options.agents.ready(target) };
    } catch (err) {
      const status = err instanceof UpstreamError && err.code === 'ERR_UPSTREAM_TIMEOUT' ? 504 : 502;
      // The dialer's messages already name host:port.
      const text = withCertificateAdvice((err as Error).message, errorCodeOf(err), 'http');
      throw new RequestError(`ticketbooth: no TLS connection to the origin: ${oneLine(text)}\n`, status);
    }
  }
}

/**
 * `Proxy-Connection` is the client's word to us (RFC 7230 A.1.2: a hop-by-hop header that was
 * never standard); proxy-chain forwards it, and the origin's parser reads it as `Connection`, so a
 * client's `Proxy-Connection: close` would close every kept origin connection. Removed in place:
 * proxy-chain builds the forwarded headers from `rawHeaders`.
 */
function dropProxyConnection(raw: string[]): void {
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i].toLowerCase() === 'proxy-connection') raw.splice(i, 2);
}

/** The HTTP answer a refused client gets before the close. */
export function refusal(reason: RefusalReason): string {
  const [status, text] =
    reason === 'allow-list'
      ? ['403 Forbidden', 'ticketbooth: this client may not use the proxy\n']
      : ['503 Service Unavailable', `ticketbooth: too many connections${reason === 'client-limit' ? ' from this client' : ''}\n`];
  return `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
}
