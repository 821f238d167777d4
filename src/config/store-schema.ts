import { z } from 'zod';
import { hostPort, onePasswordSource, passwordSource } from './common.js';

/**
 * `cache.store`: memory (the default), or Redis for a fleet, either one server (`url`) or the
 * primary a Redis Sentinel group names (`sentinels` + `name`). Passwords are never inline in
 * the file: `auth` and `sentinelAuth` name a file or an environment variable, as SMTP `auth` does.
 */

/** An ACL user (the `default` user when absent) and where its password comes from. */
export const redisAuthSchema = z.strictObject({ username: z.string().min(1).optional(), ...passwordSource }).refine(...onePasswordSource);

const redisStoreSchema = z
  .strictObject({
    type: z.literal('redis'),
    /** One Redis: `redis://host:port[/db]` or `rediss://` (a password in it still works; `auth` keeps it out of the file). */
    url: z.string().min(1).optional(),
    /** Some or all of the sentinels (`HOST:PORT`), asked in turn for the primary of `name`. */
    sentinels: z.array(hostPort).min(1).optional(),
    /** The Sentinel master name (`sentinel monitor NAME ...`). */
    name: z.string().min(1).optional(),
    /** Prefix of every key; instances sharing a cache must use the same one. */
    prefix: z.string().default('ticketbooth:'),
    /** For the Redis servers (primary and replicas). */
    auth: redisAuthSchema.optional(),
    /** For the sentinels themselves (their `requirepass`), when they have one. */
    sentinelAuth: redisAuthSchema.optional(),
  })
  .superRefine((s, ctx) => {
    const issue = (path: string[], message: string): void => ctx.addIssue({ code: 'custom', path, message });
    if (s.url !== undefined && s.sentinels !== undefined)
      issue(['sentinels'], 'give either url (one Redis) or sentinels (Redis Sentinel), not both');
    if (s.url === undefined && s.sentinels === undefined) issue([], 'give url (one Redis) or sentinels and name (Redis Sentinel)');
    if (s.sentinels !== undefined && s.name === undefined) issue(['name'], 'the Sentinel master name is required with sentinels');
    if (s.sentinels === undefined && s.name !== undefined) issue(['name'], 'a master name goes with sentinels, not with url');
    if (s.sentinels === undefined && s.sentinelAuth !== undefined) issue(['sentinelAuth'], 'only with sentinels');
    if (s.url !== undefined && s.auth !== undefined && /^\w+:\/\/[^/@]*:[^/@]*@/.test(s.url))
      issue(['auth'], 'the url holds a password already: give it in one place, auth');
  });

export const storeSchema = z
  .discriminatedUnion('type', [z.strictObject({ type: z.literal('memory') }), redisStoreSchema])
  .prefault({ type: 'memory' });

export type RedisStoreConfig = z.infer<typeof redisStoreSchema>;
export type RedisAuthConfig = z.infer<typeof redisAuthSchema>;
