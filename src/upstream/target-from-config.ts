import { readConfigFile } from '../config/files.js';
import type { UpstreamConfig } from '../config/schema.js';
import { verifyMode } from '../config/tls.js';
import { secureContextFor } from './secure-context.js';
import type { TlsTarget } from './tls-target.js';

/** Reads the files a configured upstream names (once, at start) into a dialable target. */
export function targetFromConfig(u: UpstreamConfig): TlsTarget {
  const read = (file: string, what: string): string => readConfigFile(file, what, `upstream ${u.host}:${u.port}`);
  if ((u.cert === undefined) !== (u.key === undefined)) {
    throw new Error(`upstream ${u.host}:${u.port}: cert and key go together`);
  }
  const target: TlsTarget = {
    host: u.host,
    port: u.port,
    servername: u.servername,
    ca: u.ca === undefined ? undefined : read(u.ca, 'ca'),
    verify: verifyMode(u.verify),
    minVersion: u.minVersion,
    maxVersion: u.maxVersion,
    ciphers: u.ciphers,
    groups: u.groups,
    cert: u.cert === undefined ? undefined : read(u.cert, 'cert'),
    key: u.key === undefined ? undefined : read(u.key, 'key'),
  };
  // Built now, and kept for every connection: what tls.connect would otherwise reject on each one
  // (a cipher string nothing matches, a key that does not fit its certificate, a CA file that is
  // no PEM) fails the start instead.
  try {
    secureContextFor(target);
  } catch (err) {
    throw new Error(`upstream ${u.host}:${u.port}: ${(err as Error).message}`, { cause: err });
  }
  return target;
}
