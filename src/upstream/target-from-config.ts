import { createSecureContext } from 'node:tls';
import { readConfigFile } from '../config/files.js';
import type { UpstreamConfig } from '../config/schema.js';
import { verifyMode } from '../config/tls.js';
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
    cert: u.cert === undefined ? undefined : read(u.cert, 'cert'),
    key: u.key === undefined ? undefined : read(u.key, 'key'),
  };
  // What tls.connect would otherwise reject on every connection (a cipher string nothing matches,
  // a key that does not fit its certificate, a CA file that is no PEM) fails the start instead.
  try {
    createSecureContext({
      ca: target.ca,
      cert: target.cert,
      key: target.key,
      ciphers: target.ciphers,
      minVersion: target.minVersion,
      maxVersion: target.maxVersion,
    });
  } catch (err) {
    throw new Error(`upstream ${u.host}:${u.port}: ${(err as Error).message}`, { cause: err });
  }
  return target;
}
