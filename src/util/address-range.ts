import ipaddr from 'ipaddr.js';

export type AddressRange = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** One allow-list entry: a CIDR range, or an address alone (a /32 or /128). */
export function parseAddressRange(entry: string): AddressRange {
  try {
    return entry.includes('/') ? ipaddr.parseCIDR(entry) : [ipaddr.parse(entry), entry.includes(':') ? 128 : 32];
  } catch {
    throw new Error(`"${entry}" is not an address or CIDR range`);
  }
}
