import * as z from 'zod';
import { connectionCacheSchema, listenerFields, port, withClientLimit } from './common.js';
import { groups, tlsVersion, verify } from './tls.js';

/**
 * The `type: http` listener: an HTTP forward proxy for legacy clients that send plain `http://`
 * requests; ticketbooth makes each request to the origin over TLS. Kept apart from schema.ts so
 * the shape reads in one place; schema.ts lists it in `listenerSchemas`.
 */

/** How to reach one origin over TLS; every field falls back to `defaults`, then to the request. */
export const httpOriginSchema = z.strictObject({
  /** The TLS port; default: the port in the request URL, else 443. */
  port: port.optional(),
  /** SNI and the name to verify; default: the host of the request URL. */
  servername: z.string().min(1).optional(),
  /** PEM CA bundle file; default: `defaults.ca`, else the system CAs. */
  ca: z.string().min(1).optional(),
  verify: verify.optional(),
  minVersion: tlsVersion.optional(),
  maxVersion: tlsVersion.optional(),
  groups: groups.optional(),
});

export const httpListenerSchema = z
  .strictObject({
    type: z.literal('http'),
    ...listenerFields(1000),
    /** Per origin, keyed by `host` or `host:port` as the client writes it in its `http://` URL. */
    upstreams: z.record(z.string().regex(/^[^\s/]+$/, 'expected a host or host:port'), httpOriginSchema).default({}),
    /** For origins not in `upstreams`: certificates verified, system CAs unless `ca` is given. */
    defaults: z.strictObject({ verify: verify.default(true), ca: z.string().min(1).optional() }).prefault({}),
    /**
     * Origin connections kept alive between requests (an https.Agent's keep-alive, through the
     * dialer). Idle 4 s by default: below the 5 s keep-alive timeout of Node and Apache servers, so
     * a kept connection is rarely one the origin is closing.
     */
    connectionCache: connectionCacheSchema(4).prefault({}),
  })
  .transform(withClientLimit);

export type HttpListenerConfig = z.infer<typeof httpListenerSchema>;
export type HttpOriginConfig = z.infer<typeof httpOriginSchema>;
