import type { HttpListenerConfig } from '../../config/http-schema.js';
import { admission } from '../../net/admission.js';
import { poolLimits } from '../../net/idle-pool.js';
import { TcpListener } from '../../net/tcp-listener.js';
import { originResolver } from '../../upstream/http-origin.js';
import type { ListenerFactory } from '../listener.js';
import { OriginAgents } from './origin-agents.js';
import { HttpProxy, refusal } from './proxy.js';

/**
 * The `type: http` listener: a forward proxy for plain `http://` requests, each made to its origin
 * over TLS. The origins' CA files are read here, once.
 */
export const create: ListenerFactory<HttpListenerConfig> = (l, deps) => {
  const agents = new OriginAgents(poolLimits(l.connectionCache), {
    listener: l.name,
    cache: deps.cache,
    audit: deps.audit,
    keys: deps.keys,
  });
  const proxy = new HttpProxy({ agents, origins: originResolver(l) });
  return new TcpListener({
    ...admission(l, deps.audit),
    serve: (socket) => proxy.serve(socket),
    refuse: (socket, reason) => socket.write(refusal(reason)),
    drain: () => proxy.drain(),
    stopped: () => Promise.resolve(agents.close()),
    upstreamPool: agents,
  });
};
