import { z } from 'zod';

/** The optional `admin` section: where /metrics, /healthz and /readyz are served. */
export const adminSchema = z.strictObject({
  /** `HOST:PORT`, or `PORT` alone for loopback; bind a non-loopback address only on purpose. */
  listen: z
    .string()
    .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-_]*):\d{1,5}$|^\d{1,5}$/, 'expected HOST:PORT')
    .default('127.0.0.1:9464'),
});

export type AdminConfig = z.infer<typeof adminSchema>;
