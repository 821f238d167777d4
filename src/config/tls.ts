import { createSecureContext } from 'node:tls';
import * as z from 'zod';

/** `minVersion` and `maxVersion`, wherever a TLS connection is configured. */
export const tlsVersion = z.enum(['TLSv1.2', 'TLSv1.3']);

/** true: chain and name checked; `chain`: chain only; false: not checked (explicit opt-out). */
export const verify = z.union([z.boolean(), z.literal('chain')]);

/** The dialer's word for a configured `verify` (TlsTarget['verify']). */
export function verifyMode(v: z.infer<typeof verify>): 'name' | 'chain' | 'none' {
  return v === true ? 'name' : v === 'chain' ? 'chain' : 'none';
}

/**
 * `groups`: the TLS key-exchange groups offered, most preferred first, as OpenSSL names
 * (`X25519MLKEM768`, `X25519`, `P-256`), a list or one colon-separated string; Node's `ecdhCurve`,
 * kept as the colon form. Absent: Node's default (`auto`, OpenSSL's list: hybrid post-quantum
 * first). Each name is tried on Node's own OpenSSL at load, so a name it lacks fails the config
 * with its key rather than every handshake.
 */
export const groups = z
  .union([z.array(z.string().min(1)).min(1), z.string().min(1)])
  .transform((g) => (typeof g === 'string' ? g.split(':') : g))
  .superRefine((names, ctx) => {
    for (const name of names) {
      if (!knownGroup(name)) ctx.addIssue({ code: 'custom', message: `unknown TLS group "${name}" (not in this Node's OpenSSL)` });
    }
  })
  .transform((names) => names.join(':'));

function knownGroup(name: string): boolean {
  if (name === '' || name.includes(':')) return false;
  try {
    createSecureContext({ ecdhCurve: name });
    return true;
  } catch {
    return false;
  }
}
