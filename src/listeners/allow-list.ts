import ipaddr from 'ipaddr.js';

/** Client addresses a listener serves: CIDR ranges, IPv4-mapped IPv6 addresses seen as IPv4. */
export class AllowList {
  private readonly ranges: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>;

  constructor(cidrs: readonly string[]) {
    this.ranges = cidrs.map((c) => {
      try {
        return c.includes('/') ? ipaddr.parseCIDR(c) : ([ipaddr.parse(c), c.includes(':') ? 128 : 32] as [ipaddr.IPv4 | ipaddr.IPv6, number]);
      } catch {
        throw new Error(`allow: "${c}" is not an address or CIDR range`);
      }
    });
  }

  allows(address: string | undefined): boolean {
    if (!address || !ipaddr.isValid(address)) return false;
    let addr = ipaddr.parse(address);
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
    return this.ranges.some(([range, bits]) => range.kind() === addr.kind() && addr.match(range, bits));
  }
}
