import * as z from 'zod';
import { SEVEN_DAYS_S } from '../util/time.js';
import { adminSchema } from './admin-schema.js';
import { listenerFields, port, withClientLimit } from './common.js';
import { httpListenerSchema } from './http-schema.js';
import { dnsSchema, mtaStsSchema, smtpListenerSchema } from './smtp-schema.js';
import { storeSchema } from './store-schema.js';
import { groups, tlsVersion, verify } from './tls.js';

export const upstreamSchema = z.strictObject({
  host: z.string().min(1),
  port,
  /** Implicit TLS when absent; `smtp`: EHLO + STARTTLS first. */
  starttls: z.enum(['smtp']).optional(),
  servername: z.string().min(1).optional(),
  /** PEM CA bundle file; the system CAs when absent. */
  ca: z.string().min(1).optional(),
  /** true: chain and name checked (default); `chain`: chain only; false: not checked (explicit opt-out). */
  verify: verify.default(true),
  minVersion: tlsVersion.optional(),
  maxVersion: tlsVersion.optional(),
  ciphers: z.string().min(1).optional(),
  groups: groups.optional(),
  /** PEM client certificate and key files. */
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  /** The name ticketbooth gives in its own EHLO before STARTTLS. */
  heloName: z.string().min(1).optional(),
});

export const tunnelListenerSchema = z
  .strictObject({
    type: z.literal('tunnel'),
    ...listenerFields(1000),
    upstream: upstreamSchema,
    timeouts: z
      .strictObject({
        /** Connect, greeting, EHLO, STARTTLS and TLS handshake together. */
        setupSeconds: z.number().positive().default(30),
        /** A session with no bytes either way for this long is closed (0: never). */
        idleSeconds: z.number().min(0).default(3600),
      })
      .prefault({}),
  })
  .transform(withClientLimit);

/**
 * Other listener types (smtp, http) register their schemas here; each is a strict object with a
 * literal `type`, so a misspelt key fails with its path.
 */
export const listenerSchemas = [tunnelListenerSchema, smtpListenerSchema, httpListenerSchema] as const;

export const cacheSchema = z.strictObject({
  ticketsPerDestination: z.number().int().min(1).max(64).default(8),
  maxDestinations: z.number().int().min(1).default(10_000),
  /** Cap on any session's age; the server's lifetime hint and 7 days cap it too. */
  maxAgeSeconds: z.number().int().min(1).max(SEVEN_DAYS_S).default(3600),
  reuse: z.enum(['never', 'adaptive']).default('never'),
  store: storeSchema,
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

/**
 * `ticketbooth tlsmgr` inside `serve`: Postfix's session cache service on `socket`
 * (`$queue_directory/private/$tlsmgr_service_name`), on the `cache` section's store and policy.
 */
export const tlsmgrSchema = z.strictObject({
  socket: z.string().min(1),
  /** The real tlsmgr's socket, for seed, tktkey and the smtpd cache; answered as disabled when absent. */
  forward: z.string().min(1).optional(),
  /** The socket's owner (Postfix's mail_owner); mode 0600. */
  owner: z.string().min(1).default('postfix'),
});

export const configSchema = z.strictObject({
  listeners: z.array(z.discriminatedUnion('type', [...listenerSchemas])).min(1),
  cache: cacheSchema.prefault({}),
  tlsmgr: tlsmgrSchema.optional(),
  audit: auditSchema.default({}),
  /** Admin listener for /metrics, /healthz, /readyz; none when absent. */
  admin: adminSchema.optional(),
  /** Resolver for SMTP MX routing; the system's servers when it names none. */
  dns: dnsSchema.prefault({}),
  /** MTA-STS policy fetching, for SMTP routes with `tls.mtaSts` (RFC 8461). */
  mtaSts: mtaStsSchema.prefault({}),
  /**
   * Processes serving the listeners: 1 serves in this process; more fork workers behind the same
   * sockets, sharing one ticket cache, audit file and metrics through this process (`auto`: one per
   * core). Changing it needs a restart.
   */
  workers: z.union([z.number().int().min(1).max(64), z.literal('auto')]).default(1),
  /** On SIGTERM/SIGINT, how long open sessions may take to finish. */
  shutdownTimeoutSeconds: z.number().min(0).default(30),
  /**
   * On SIGTERM/SIGINT, how long to go on accepting with /readyz already saying 503, before the
   * listeners close: a load balancer (or Kubernetes) that probes /readyz stops sending new clients
   * first, so none lands in the closing listener's backlog (reset by the kernel). 0: close at once.
   */
  drainDelaySeconds: z.number().min(0).max(300).default(0),
  /** What is said on stderr for a person: `text` lines or one JSON object per line; `level` drops the less severe. */
  log: z
    .strictObject({ format: z.enum(['text', 'json']).default('text'), level: z.enum(['error', 'warn', 'info']).default('info') })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ListenerConfig = Config['listeners'][number];
export type TunnelListenerConfig = z.infer<typeof tunnelListenerSchema>;
export type UpstreamConfig = z.infer<typeof upstreamSchema>;
export type CacheConfig = z.infer<typeof cacheSchema>;
