import { z } from 'zod';

/** `minVersion` and `maxVersion`, wherever a TLS connection is configured. */
export const tlsVersion = z.enum(['TLSv1.2', 'TLSv1.3']);

/** true: chain and name checked; `chain`: chain only; false: not checked (explicit opt-out). */
export const verify = z.union([z.boolean(), z.literal('chain')]);

/** The dialer's word for a configured `verify` (TlsTarget['verify']). */
export function verifyMode(v: z.infer<typeof verify>): 'name' | 'chain' | 'none' {
  return v === true ? 'name' : v === 'chain' ? 'chain' : 'none';
}
