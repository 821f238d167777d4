import * as z from 'zod';
import { parseAddressRange } from '../util/address-range.js';

/** `HOST:PORT`, `[v6]:PORT`, or `PORT` alone (then loopback); the port 0–65535. */
export const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-_]*):\d{1,5}$|^\d{1,5}$/, 'expected HOST:PORT')
  .refine((v) => Number(/(\d+)$/.exec(v)?.[1]) <= 65535, 'port must be at most 65535');

export const port = z.number().int().min(1).max(65535);

/**
 * Where a password comes from (SMTP AUTH, Redis): a file or an environment variable, never the
 * config itself; read by `readPassword` (files.ts). Spread into a strict object, then `.refine(...onePasswordSource)`.
 */
export const passwordSource = {
  /** A file holding the password (one trailing newline is dropped). */
  passwordFile: z.string().min(1).optional(),
  /** An environment variable holding it. */
  passwordEnv: z.string().min(1).optional(),
};

export const onePasswordSource = [
  (a: { passwordFile?: string | undefined; passwordEnv?: string | undefined }): boolean =>
    (a.passwordFile === undefined) !== (a.passwordEnv === undefined),
  { message: 'give exactly one of passwordFile and passwordEnv' },
] as const;

/** Client addresses or CIDR ranges a listener serves; loopback only by default. */
export const allowList = z
  .array(z.string().min(1))
  .default(['127.0.0.0/8', '::1/128'])
  .superRefine((cidrs, ctx) => {
    cidrs.forEach((cidr, i) => {
      try {
        parseAddressRange(cidr);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: [i], message: (err as Error).message });
      }
    });
  });

/**
 * The keys every listener type has (the admission part: see src/net/admission.ts), with the
 * type's default connection limit. Spread into each type's schema, which then goes through
 * `withClientLimit`.
 */
export function listenerFields(defaultMaxConnections: number) {
  return {
    name: z.string().min(1),
    listen: hostPort,
    allow: allowList,
    maxConnections: z.number().int().positive().default(defaultMaxConnections),
    /** Open connections one client address may hold; default: half of `maxConnections`. */
    maxConnectionsPerClient: z.number().int().positive().optional(),
  };
}

/** The per-client default: no one address takes more than half the slots (Postfix: 50 of 100). */
export function withClientLimit<L extends { maxConnections: number; maxConnectionsPerClient?: number | undefined }>(
  l: L,
): L & { maxConnectionsPerClient: number } {
  return { ...l, maxConnectionsPerClient: l.maxConnectionsPerClient ?? Math.ceil(l.maxConnections / 2) };
}

/**
 * A listener's `connectionCache`: upstream connections kept between uses and shared by its
 * clients, within these limits. `idleSeconds` defaults per listener type.
 */
export function connectionCacheSchema(idleSeconds: number) {
  const positive = z.number().positive();
  return z.strictObject({
    enabled: z.boolean().default(true),
    /** How long a connection waits for its next use. */
    idleSeconds: positive.default(idleSeconds),
    /** How long after it was opened a connection may still be used. */
    maxAgeSeconds: positive.default(300),
    /** Uses per connection; no limit when absent. */
    maxUses: z.number().int().positive().optional(),
    /** Idle connections per next hop (SMTP) or origin (HTTP), and in all. */
    maxIdlePerHop: z.number().int().positive().default(8),
    maxIdle: z.number().int().positive().default(100),
  });
}
