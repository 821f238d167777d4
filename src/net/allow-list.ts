import ipaddr from 'ipaddr.js';
import { parseAddressRange, type AddressRange } from '../util/address-range.js';

/** Distinct client addresses remembered; past it the memo starts again (a scan from many addresses). */
const MAX_VERDICTS = 4096;

/** Client addresses a listener serves: CIDR ranges, IPv4-mapped IPv6 addresses seen as IPv4. */
export class AllowList {
  private readonly ranges: AddressRange[];

  constructor(cidrs: readonly string[]) {
    this.ranges = cidrs.map(parseAddressRange);
  }

  /** Verdicts by address: parsing one with ipaddr.js was ~3% of the CPU of a short connection. */
  private readonly verdicts = new Map<string, boolean>();

  allows(address: string | undefined): boolean {
    if (!address) return false;
    let verdict = this.verdicts.get(address);
    if (verdict === undefined) {
      verdict = this.check(address);
      if (this.verdicts.size >= MAX_VERDICTS) this.verdicts.clear();
      this.verdicts.set(address, verdict);
    }
    return verdict;
  }

  private check(address: string): boolean {
    if (!ipaddr.isValid(address)) return false;
    let addr = ipaddr.parse(address);
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
    return this.ranges.some(([range, bits]) => range.kind() === addr.kind() && addr.match(range, bits));
  }
}
