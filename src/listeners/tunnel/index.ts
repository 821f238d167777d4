import { hostname } from 'node:os';
import type { TunnelListenerConfig } from '../../config/schema.js';
import { admission } from '../../net/admission.js';
import { TcpListener } from '../../net/tcp-listener.js';
import { refusalLine } from '../../smtp/replies.js';
import { targetFromConfig } from '../../upstream/target-from-config.js';
import type { ListenerFactory } from '../listener.js';
import { serveTunnel, type TunnelOptions } from './serve.js';

/**
 * The `type: tunnel` listener: plaintext in, TLS out (after STARTTLS with `starttls: smtp`) to one
 * configured upstream. The upstream's files (CA, client certificate and key) are read here, once.
 */
export const create: ListenerFactory<TunnelListenerConfig> = (l, deps) => {
  const setupTimeoutMs = l.timeouts.setupSeconds * 1000;
  const tunnel: TunnelOptions = {
    target: targetFromConfig(l.upstream),
    starttls: l.upstream.starttls,
    heloName: l.upstream.heloName ?? hostname(),
    setupTimeoutMs,
    idleTimeoutMs: l.timeouts.idleSeconds * 1000,
    dial: { listener: l.name, cache: deps.cache, audit: deps.audit, keys: deps.keys, handshakeTimeoutMs: setupTimeoutMs },
  };
  return new TcpListener({
    ...admission(l, deps.audit),
    // A byte relay: after the client's FIN, the server's reply must still reach it.
    allowHalfOpen: true,
    serve: (socket) => serveTunnel(socket, tunnel),
    // An SMTP client is refused the SMTP way (554, or 421 at a limit); any other gets the close.
    refuse: l.upstream.starttls === 'smtp' ? (socket, why) => socket.write(refusalLine(why)) : undefined,
  });
};
