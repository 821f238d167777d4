import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenOn } from '../net/listen-address.js';
import { http } from '../util/node-http.js';
import type { Metrics } from './metrics.js';

export interface Readiness {
  ready: boolean;
  /** What is not ready, one phrase each. */
  problems: string[];
  /** What works less well but does not stop traffic (a ticket store away: full handshakes). */
  degraded?: string[];
}

export interface AdminServerOptions {
  /** `HOST:PORT` or `PORT` (loopback). */
  listen: string;
  metrics: Metrics;
  readiness(): Promise<Readiness>;
  /** POST /reload (from loopback only): what was reloaded, or a rejection saying why nothing was. */
  reload(): Promise<string>;
}

/**
 * The admin listener: `/metrics` (Prometheus text format), `/healthz` (the process answers),
 * `/readyz` (200 when ready for traffic, else 503 with the reasons). Loopback unless configured.
 */
export class AdminServer {
  private readonly server: Server;
  private draining = false;

  constructor(private readonly options: AdminServerOptions) {
    // Load balancers' health checks often send HTTP/1.0 without a Host header (haproxy's `option
    // httpchk`); Node answers those 400 by default, which would mark every instance down.
    this.server = http.createServer({ requireHostHeader: false }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => send(res, 500, `error: ${(err as Error).message}\n`));
    });
  }

  start(): Promise<AddressInfo> {
    return listenOn(this.server, this.options.listen);
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** From now on /readyz answers 503 (shutdown has begun); /healthz and /metrics still answer. */
  drain(): void {
    this.draining = true;
  }

  async stop(): Promise<void> {
    this.options.metrics.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/reload') return this.reload(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n');
    switch (path) {
      case '/metrics': {
        const registry = this.options.metrics.registry;
        return send(res, 200, await registry.metrics(), registry.contentType);
      }
      case '/healthz':
        return send(res, 200, 'ok\n');
      case '/readyz': {
        const r = this.draining ? { ready: false, problems: ['shutting down'] } : await this.options.readiness();
        const degraded = r.degraded?.length ? ` (degraded: ${r.degraded.join('; ')})` : '';
        return send(res, r.ready ? 200 : 503, r.ready ? `ready${degraded}\n` : `not ready: ${r.problems.join('; ')}\n`);
      }
      default:
        return send(res, 404, 'not found: try /metrics, /healthz, /readyz\n');
    }
  }

  /**
   * A reload changes what the service does, so unlike the read-only endpoints it is taken only from
   * this host (an admin listener bound for probes from a pod network must not let them reconfigure it).
   */
  private async reload(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') return send(res, 405, 'POST /reload\n');
    if (!isLoopback(req.socket.remoteAddress)) return send(res, 403, 'reload is taken from loopback only\n');
    try {
      return send(res, 200, `${await this.options.reload()}\n`);
    } catch (err) {
      return send(res, 409, `not reloaded: ${(err as Error).message}\n`);
    }
  }
}

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
