import { txtStrings, type SecureResolver } from '../dns/secure-resolver.js';

/** A reporting URI this version delivers to (RFC 8460 3): a mailbox, or an HTTPS endpoint that takes a POST. */
export type Rua = { kind: 'mailto'; uri: string; address: string } | { kind: 'https'; uri: string; url: URL };

/** What `_smtp._tls.<domain>` said: its reporting URIs, or why there are none. */
export type RuaLookup = { ruas: Rua[]; ignored: string[] } | { none: string };

/**
 * The TLSRPT policy record of RFC 8460 3: among the TXT strings of `_smtp._tls.<domain>`, exactly
 * one must start with `v=TLSRPTv1` (none, or several: the domain takes no reports). Its `rua` is a
 * comma-separated list of URIs; `mailto:` and `https:` are delivered to, others are ignored.
 */
export function parseTlsrptTxt(records: readonly string[]): RuaLookup {
  const ours = records.filter((r) => /^v=TLSRPTv1\s*(;|$)/.test(r));
  if (ours.length === 0) return { none: 'no v=TLSRPTv1 record' };
  if (ours.length > 1) return { none: `${ours.length} v=TLSRPTv1 records (exactly one allowed)` };
  const fields = new Map<string, string>();
  for (const part of ours[0].split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const rua = fields.get('rua');
  if (!rua) return { none: 'no rua' };
  const ruas: Rua[] = [];
  const ignored: string[] = [];
  for (const raw of rua.split(',').map((u) => u.trim())) {
    const parsed = ruaOf(raw);
    if (parsed) ruas.push(parsed);
    else if (raw) ignored.push(raw);
  }
  return ruas.length > 0 ? { ruas, ignored } : { none: `no usable rua (${ignored.join(', ')})` };
}

function ruaOf(uri: string): Rua | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  if (url.protocol === 'https:') return { kind: 'https', uri, url };
  if (url.protocol !== 'mailto:') return undefined;
  // mailto:addr[?headers]: one address; %-escapes (RFC 6068) decoded.
  const address = decodeURIComponent(url.pathname);
  return /^[^\s@<>,]+@[^\s@<>,]+$/.test(address) ? { kind: 'mailto', uri, address } : undefined;
}

/** Asks the resolver (the config's `dns.servers`, or the system's) for the domain's TLSRPT record. */
export async function lookupRua(resolver: SecureResolver, domain: string): Promise<RuaLookup> {
  const name = `_smtp._tls.${domain}`;
  const r = await resolver.query(name, 'TXT');
  if (r.status === 'NXDOMAIN') return { none: `${name}: no such name` };
  if (r.status !== 'NOERROR') return { none: `${name}: DNS lookup failed (${r.status})` };
  const records = txtStrings(r);
  return parseTlsrptTxt(records);
}
