import { readConfigFile } from '../config/files.js';
import type { HttpListenerConfig } from '../config/http-schema.js';
import { verifyMode } from '../config/tls.js';
import type { TlsTarget } from './tls-target.js';

/** Maps the host and port of a client's `http://` URL to the TLS origin to dial. */
export type OriginResolver = (host: string, urlPort: number | undefined) => TlsTarget;

/**
 * Builds the resolver for one `type: http` listener, reading CA files once, at start. The TLS
 * port is the table's, else the URL's explicit port, else 443; the trust settings are the table's,
 * else the listener's defaults (verification on).
 */
export function originResolver(l: HttpListenerConfig): OriginResolver {
  const read = (file: string, where: string): string => readConfigFile(file, 'ca', where);
  const defaultCa = l.defaults.ca === undefined ? undefined : read(l.defaults.ca, 'defaults');
  const table = new Map(
    Object.entries(l.upstreams).map(([origin, u]) => [
      origin.toLowerCase(),
      { ...u, ca: u.ca === undefined ? defaultCa : read(u.ca, `upstreams.${origin}`) },
    ]),
  );
  return (host, urlPort) => {
    const h = host.toLowerCase();
    const u = (urlPort === undefined ? undefined : table.get(`${h}:${urlPort}`)) ?? table.get(h);
    return {
      host,
      port: u?.port ?? urlPort ?? 443,
      servername: u?.servername,
      ca: u ? u.ca : defaultCa,
      verify: verifyMode(u?.verify ?? l.defaults.verify),
      minVersion: u?.minVersion,
      maxVersion: u?.maxVersion,
      groups: u?.groups,
    };
  };
}
