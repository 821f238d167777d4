import * as z from 'zod';
import { hostPort } from './common.js';

/** The optional `admin` section: where /metrics, /healthz and /readyz are served. */
export const adminSchema = z.strictObject({
  /** `HOST:PORT`, or `PORT` alone for loopback; bind a non-loopback address only on purpose. */
  listen: hostPort.default('127.0.0.1:9464'),
});

export type AdminConfig = z.infer<typeof adminSchema>;
