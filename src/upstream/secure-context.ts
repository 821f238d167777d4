import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { BoundedMap } from '../util/bounded-map.js';
import { textDigest } from '../util/digest.js';
import type { ConnectionInputs } from './tls-target.js';

/**
 * Under DANE proper the context's CA store is empty (not the system's, not the route's `ca`): Node
 * completes the peer's chain from that store (getPeerCertificate), and a certificate the server did
 * not send must not become the anchor a DANE-TA record names (RFC 7671 5.2.2 wants the TLSA data).
 *
 * One SecureContext per TLS configuration, built on first use and kept: handing the CA text to
 * every `tls.connect()` makes Node parse it and build a context per connection (a quarter to a
 * third of the CPU of a short connection). A context is found by its own options (PEM texts by
 * digest), so two configurations that differ in any input — two trust decisions — never share one.
 */

/** Distinct configurations kept; a process has a handful (listeners × routes), this bounds a surprise. */
const MAX_CONTEXTS = 256;
const contexts = new BoundedMap<string, SecureContext>(MAX_CONTEXTS);

export function secureContextFor(t: ConnectionInputs): SecureContext {
  const options = contextOptions(t);
  // Every input is in the id by construction: each option, strings by digest (a CA bundle can be 200 KB).
  const id = Object.entries(options)
    .map(([name, v]) => `${name}=${typeof v === 'string' ? textDigest(v) : String(v)}`)
    .join('\0');
  let ctx = contexts.get(id);
  if (!ctx) {
    ctx = createSecureContext(options);
    contexts.set(id, ctx);
  }
  return ctx;
}

function contextOptions(t: ConnectionInputs): SecureContextOptions {
  return {
    ...(t.dane?.effective === 'dane' ? { ca: [] } : t.ca !== undefined ? { ca: t.ca } : {}),
    ...(t.cert !== undefined && t.key !== undefined ? { cert: t.cert, key: t.key } : {}),
    ...(t.ciphers !== undefined ? { ciphers: t.ciphers } : {}),
    ...(t.groups !== undefined ? { ecdhCurve: t.groups } : {}),
    minVersion: t.minVersion ?? 'TLSv1.2',
    maxVersion: t.maxVersion ?? 'TLSv1.3',
  };
}
