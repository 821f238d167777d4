import { z } from 'zod';
import { AllowList } from '../listeners/allow-list.js';

/** `HOST:PORT`, `[v6]:PORT`, or `PORT` alone (then loopback); the port 0–65535. */
export const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-_]*):\d{1,5}$|^\d{1,5}$/, 'expected HOST:PORT')
  .refine((v) => Number(/(\d+)$/.exec(v)?.[1]) <= 65535, 'port must be at most 65535');

/** Open connections one client address may hold; default (in `admission`): half of `maxConnections`. */
export const maxConnectionsPerClient = z.number().int().positive().optional();

/** Client addresses or CIDR ranges a listener serves; loopback only by default. */
export const allowList = z
  .array(z.string().min(1))
  .default(['127.0.0.0/8', '::1/128'])
  .superRefine((cidrs, ctx) => {
    cidrs.forEach((cidr, i) => {
      try {
        new AllowList([cidr]);
      } catch {
        ctx.addIssue({ code: 'custom', path: [i], message: `"${cidr}" is not an address or CIDR range` });
      }
    });
  });
