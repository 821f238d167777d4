import { z } from 'zod';
import { hostPort, allowList, maxConnectionsPerClient } from './common.js';
import { adminSchema } from './admin-schema.js';
import { httpListenerSchema } from './http-schema.js';
import { dnsSchema, smtpListenerSchema } from './smtp-schema.js';

/** `HOST:PORT`, `[v6]:PORT`; the host defaults to loopback when only a port is given. */

const tlsVersion = z.enum(['TLSv1.2', 'TLSv1.3']);

export const upstreamSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  /** Implicit TLS when absent; `smtp`: EHLO + STARTTLS first. */
  starttls: z.enum(['smtp']).optional(),
  servername: z.string().min(1).optional(),
  /** PEM CA bundle file; the system CAs when absent. */
  ca: z.string().min(1).optional(),
  /** true: chain and name checked (default); `chain`: chain only; false: not checked (explicit opt-out). */
  verify: z.union([z.boolean(), z.literal('chain')]).default(true),
  minVersion: tlsVersion.optional(),
  maxVersion: tlsVersion.optional(),
  ciphers: z.string().min(1).optional(),
  /** PEM client certificate and key files. */
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  /** The name ticketbooth gives in its own EHLO before STARTTLS. */
  heloName: z.string().min(1).optional(),
});


export const tunnelListenerSchema = z.strictObject({
  name: z.string().min(1),
  type: z.literal('tunnel'),
  listen: hostPort,
  allow: allowList,
  maxConnections: z.number().int().positive().default(1000),
  maxConnectionsPerClient,
  upstream: upstreamSchema,
  timeouts: z
    .strictObject({
      /** Connect, greeting, EHLO, STARTTLS and TLS handshake together. */
      setupSeconds: z.number().positive().default(30),
      /** A session with no bytes either way for this long is closed (0: never). */
      idleSeconds: z.number().min(0).default(3600),
    })
    .default({ setupSeconds: 30, idleSeconds: 3600 }),
});

/**
 * Other listener types (smtp, http) register their schemas here; each is a strict object with a
 * literal `type`, so a misspelt key fails with its path.
 */
export const listenerSchemas = [tunnelListenerSchema, smtpListenerSchema, httpListenerSchema] as const;

export const cacheSchema = z.strictObject({
  ticketsPerDestination: z.number().int().min(1).max(64).default(8),
  maxDestinations: z.number().int().min(1).default(10_000),
  /** Cap on any session's age; the server's lifetime hint and 7 days cap it too. */
  maxAgeSeconds: z.number().int().min(1).max(604_800).default(3600),
  reuse: z.enum(['never', 'adaptive']).default('never'),
  store: z
    .discriminatedUnion('type', [
      z.strictObject({ type: z.literal('memory') }),
      z.strictObject({ type: z.literal('redis'), url: z.string().min(1), prefix: z.string().default('ticketbooth:') }),
    ])
    .default({ type: 'memory' }),
});

export const auditSchema = z.strictObject({
  /** A file path, `-` for stdout; no audit log when absent. */
  file: z.string().min(1).optional(),
  /**
   * Size-based rotation: past this many bytes `file` is renamed `file.1` (older ones shift up to
   * `file.<maxFiles>`) and started afresh. With or without it, SIGHUP reopens the file (logrotate).
   */
  maxSize: z.number().int().min(1024).optional(),
  /** With maxSize: rotated files kept besides the current one (default 10). */
  maxFiles: z.number().int().min(1).optional(),
});

export const configSchema = z.strictObject({
  listeners: z.array(z.discriminatedUnion('type', [...listenerSchemas])).min(1),
  cache: cacheSchema.default(cacheSchema.parse({})),
  audit: auditSchema.default({}),
  /** Admin listener for /metrics, /healthz, /readyz; none when absent. */
  admin: adminSchema.optional(),
  /** Resolver for SMTP MX routing; the system's when absent. */
  dns: dnsSchema.optional(),
  /** On SIGTERM/SIGINT, how long open sessions may take to finish. */
  shutdownTimeoutSeconds: z.number().min(0).default(30),
});

export type Config = z.infer<typeof configSchema>;
export type ListenerConfig = Config['listeners'][number];
export type TunnelListenerConfig = z.infer<typeof tunnelListenerSchema>;
export type UpstreamConfig = z.infer<typeof upstreamSchema>;
export type CacheConfig = z.infer<typeof cacheSchema>;
