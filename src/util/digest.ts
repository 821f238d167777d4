import { createHash } from 'node:crypto';

/** Distinct texts remembered; a process has a handful (CA bundles, client certificates, keys). */
const MAX_TEXTS = 64;
const digests = new Map<string, string>();

/**
 * SHA-256 (hex) of a configuration text and a NUL (how the trust key has always digested its
 * parts: keys already in a shared store stay valid), computed once per text: a CA bundle can be 200 KB, and
 * its digest is asked for on every connection (the trust key, the TLS context). A config's strings
 * are the same objects each time, and V8 keeps a string's hash, so the lookup is cheap.
 */
export function textDigest(text: string): string {
  let d = digests.get(text);
  if (d === undefined) {
    d = createHash('sha256').update(text).update('\0').digest('hex');
    if (digests.size >= MAX_TEXTS) digests.clear();
    digests.set(text, d);
  }
  return d;
}
