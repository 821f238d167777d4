import ipaddr from 'ipaddr.js';
import { parseAddressRange, type AddressRange } from '../util/address-range.js';

/** Client addresses a listener serves: CIDR ranges, IPv4-mapped IPv6 addresses seen as IPv4. */
export class AllowList {
  private readonly ranges: AddressRange[];

  constructor(cidrs: readonly string[]) {
    this.ranges = cidrs.map(parseAddressRange);
  }

  allows(address: string | undefined): boolean {
    if (!address || !ipaddr.isValid(address)) return false;
    let addr = ipaddr.parse(address);
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
    return this.ranges.some(([range, bits]) => range.kind() === addr.kind() && addr.match(range, bits));
  }
}
