import { createHash, X509Certificate } from 'node:crypto';

/** A certificate's TLSA association data (RFC 6698 2.1): the certificate or its key (`selector`), whole or hashed (`matching`). */
export function tlsaData(cert: X509Certificate, selector: number, matching: number): Buffer {
  const item = selector === 0 ? cert.raw : cert.publicKey.export({ type: 'spki', format: 'der' });
  return matching === 0
    ? item
    : createHash(matching === 1 ? 'sha256' : 'sha512')
        .update(item)
        .digest();
}

/** A PEM certificate's TLSA record data (`3 1 1` unless told) as a zone file writes it, the way `ldns-dane` would. */
export function tlsaOf(pem: string, usage = 3, selector = 1, matching = 1): string {
  return `${usage} ${selector} ${matching} ${tlsaData(new X509Certificate(pem), selector, matching).toString('hex').toUpperCase()}`;
}
