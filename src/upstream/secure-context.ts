import { createSecureContext, type SecureContext } from 'node:tls';
import { textDigest } from '../util/digest.js';
import type { TlsTarget } from './tls-target.js';

/**
 * Under DANE proper the context's CA store is empty (not the system's, not the route's `ca`): Node
 * completes the peer's chain from that store (getPeerCertificate), and a certificate the server did
 * not send must not become the anchor a DANE-TA record names (RFC 7671 5.2.2 wants the TLSA data).
 *
 * One SecureContext per TLS configuration, built on first use and kept: handing the CA text to
 * every `tls.connect()` makes Node parse it and build a context per connection (a quarter to a
 * third of the CPU of a short connection). The key holds (digests of) every context input (CA set,
 * client certificate and key, ciphers, version bounds), so two configurations that differ in any of
 * them — two trust decisions — never share a context.
 */

/** Distinct configurations kept; a process has a handful (listeners × routes), this bounds a surprise. */
const MAX_CONTEXTS = 256;
const contexts = new Map<string, SecureContext>();

export function secureContextFor(t: TlsTarget): SecureContext {
  const id = contextId(t);
  let ctx = contexts.get(id);
  if (ctx) {
    contexts.delete(id); // refreshed: the Map's order is least recently used first
  } else {
    ctx = createSecureContext({
      ...(t.dane?.effective === 'dane' ? { ca: [] } : t.ca !== undefined ? { ca: t.ca } : {}),
      ...(t.cert !== undefined && t.key !== undefined ? { cert: t.cert, key: t.key } : {}),
      ...(t.ciphers !== undefined ? { ciphers: t.ciphers } : {}),
      minVersion: t.minVersion ?? 'TLSv1.2',
      maxVersion: t.maxVersion ?? 'TLSv1.3',
    });
    if (contexts.size >= MAX_CONTEXTS) contexts.delete(contexts.keys().next().value!);
  }
  contexts.set(id, ctx);
  return ctx;
}

export function contextId(t: TlsTarget): string {
  return [
    t.dane?.effective === 'dane' ? '(none: DANE)' : t.ca === undefined ? '(system)' : textDigest(t.ca),
    t.cert !== undefined && t.key !== undefined ? `${textDigest(t.cert)}+${textDigest(t.key)}` : '',
    t.ciphers ?? '',
    t.minVersion ?? 'TLSv1.2',
    t.maxVersion ?? 'TLSv1.3',
  ].join('\0');
}
