import * as z from 'zod';
import { hostPort, onePasswordSource, passwordSource } from './common.js';

/**
 * `cache.store`: memory (the default), or Redis for a fleet, either one server (`url`) or the
 * primary a Redis Sentinel group names (`sentinels` + `name`). Passwords are never inline in
 * the file: `auth` and `sentinelAuth` name a file or an environment variable, as SMTP `auth` does;
 * so do the sealing keys (`seal`) and the TLS files (`tls`).
 */

/** An ACL user (the `default` user when absent) and where its password comes from. */
export const redisAuthSchema = z.strictObject({ username: z.string().min(1).optional(), ...passwordSource }).refine(...onePasswordSource);

/** One sealing key: its id (stored with each blob, not secret) and a file or variable holding 32 random bytes, raw or base64. */
const sealKeySchema = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, ".", "_" and "-", at most 64'),
    file: z.string().min(1).optional(),
    env: z.string().min(1).optional(),
  })
  .refine((k) => (k.file === undefined) !== (k.env === undefined), { message: 'give exactly one of file and env' });

/** Session blobs (and shared values) sealed with AES-256-GCM: `current` seals, any of `keys` opens. */
const sealSchema = z.strictObject({ keys: z.array(sealKeySchema).min(1), current: z.string().min(1) }).superRefine((s, ctx) => {
  const ids = s.keys.map((k) => k.id);
  ids.forEach((id, i) => {
    if (ids.indexOf(id) !== i) ctx.addIssue({ code: 'custom', path: ['keys', i, 'id'], message: `key id ${id} is listed twice` });
  });
  if (!ids.includes(s.current)) ctx.addIssue({ code: 'custom', path: ['current'], message: `${s.current} is not among the keys` });
});

/** PEM files for TLS to the Redis servers and the sentinels: trust anchors, and a client certificate and key. */
const redisTlsSchema = z
  .strictObject({ ca: z.string().min(1).optional(), cert: z.string().min(1).optional(), key: z.string().min(1).optional() })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), { message: 'give cert and key together, or neither' });

/**
 * `{ replicas, timeoutMs }`, both with defaults (`replicaAck: {}` is one replica within 50 ms). The
 * WAIT holds the store's one connection, so its timeout stays well below the 1 s command timeout.
 */
const replicaAckSchema = z.strictObject({
  replicas: z.number().int().min(1).max(16).default(1),
  timeoutMs: z.number().int().min(1).max(500).default(50),
});

const redisStoreSchema = z
  .strictObject({
    type: z.literal('redis'),
    /** One Redis: `redis://host:port[/db]` or `rediss://` (a password in it still works; `auth` keeps it out of the file). */
    url: z.string().min(1).optional(),
    /** Some or all of the sentinels (`HOST:PORT`), asked in turn for the primary of `name`. */
    sentinels: z.array(hostPort).min(1).optional(),
    /** Some or all nodes (`HOST:PORT`) of a Redis Cluster; one destination's keys share a slot. */
    cluster: z.array(hostPort).min(1).optional(),
    /** The Sentinel master name (`sentinel monitor NAME ...`). */
    name: z.string().min(1).optional(),
    /** Prefix of every key; instances sharing a cache must use the same one. */
    prefix: z.string().default('ticketbooth:'),
    /** For the Redis servers (primary and replicas). */
    auth: redisAuthSchema.optional(),
    /** For the sentinels themselves (their `requirepass`), when they have one. */
    sentinelAuth: redisAuthSchema.optional(),
    /** Seal what is stored (keys from files or the environment); without it, sessions sit in Redis in the clear. */
    seal: sealSchema.optional(),
    /** TLS to the Redis servers and the sentinels (with `url`, it must be `rediss://`). */
    tls: redisTlsSchema.optional(),
    /** Offer a taken ticket only once `replicas` replicas hold the take (Redis WAIT, up to `timeoutMs`): single use survives a failover. */
    replicaAck: replicaAckSchema.optional(),
  })
  .superRefine((s, ctx) => {
    const issue = (path: string[], message: string): void => ctx.addIssue({ code: 'custom', path, message });
    const forms = [s.url, s.sentinels, s.cluster].filter((f) => f !== undefined).length;
    if (s.url !== undefined && s.sentinels !== undefined)
      issue(['sentinels'], 'give either url (one Redis) or sentinels (Redis Sentinel), not both');
    else if (forms > 1) issue(['cluster'], 'give one of url, sentinels and cluster');
    if (forms === 0) issue([], 'give url (one Redis), sentinels and name (Redis Sentinel), or cluster (Redis Cluster)');
    if (s.cluster !== undefined && s.replicaAck !== undefined)
      issue(['replicaAck'], 'not with cluster: WAIT would reach a node other than the slot primary that took the ticket');
    if (s.cluster !== undefined && /[{}]/.test(s.prefix)) issue(['prefix'], 'no { or } in a cluster: they would change the hash slot');
    if (s.sentinels !== undefined && s.name === undefined) issue(['name'], 'the Sentinel master name is required with sentinels');
    if (s.sentinels === undefined && s.name !== undefined) issue(['name'], 'a master name goes with sentinels, not with url');
    if (s.sentinels === undefined && s.sentinelAuth !== undefined) issue(['sentinelAuth'], 'only with sentinels');
    if (s.url !== undefined && s.auth !== undefined && /^\w+:\/\/[^/@]*:[^/@]*@/.test(s.url))
      issue(['auth'], 'the url holds a password already: give it in one place, auth');
    if (s.url !== undefined && s.tls !== undefined && !/^rediss:\/\//i.test(s.url)) issue(['tls'], 'tls goes with a rediss:// url');
  });

export const storeSchema = z
  .discriminatedUnion('type', [z.strictObject({ type: z.literal('memory') }), redisStoreSchema])
  .prefault({ type: 'memory' });

export type RedisStoreConfig = z.infer<typeof redisStoreSchema>;
export type RedisAuthConfig = z.infer<typeof redisAuthSchema>;
export type SealConfig = z.infer<typeof sealSchema>;
