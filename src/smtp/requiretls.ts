import { hostLevel, type HopIdentity } from './tls-policy.js';
import type { Route } from './routing.js';

/**
 * REQUIRETLS (RFC 8689): a message that says MAIL … REQUIRETLS goes only to a next hop that was
 * found securely, whose certificate was authenticated, and that announces REQUIRETLS itself
 * (which then gets it passed on). What fails is the audit's word, and the 5.7.30 the client hears.
 */
export type RequireTlsBlock = 'not-found-securely' | 'not-authenticated' | 'not-announced';

const WHY = {
  'not-found-securely': 'was not found securely (no DNSSEC-signed MX RRset, no enforced MTA-STS policy)',
  'not-authenticated': 'would not be authenticated (no usable TLSA record, no enforced MTA-STS policy)',
  'not-announced': 'does not announce REQUIRETLS',
} as const satisfies Record<RequireTlsBlock, string>;

export function requireTlsText(hostName: string, block: RequireTlsBlock): string {
  return `REQUIRETLS: ${hostName} ${WHY[block]}`;
}

/**
 * Whether a host can carry a REQUIRETLS message if TLS comes up as its level demands, before it is
 * connected to (4.2.1): in mode mx, found through a DNSSEC-signed MX RRset and authenticated by
 * DANE, or named by an enforced MTA-STS policy (its certificate then verified). A mode relay route
 * at `verify` or `secure` counts too: its next hop is configured, not looked up, so there is no MX
 * answer to forge, and its certificate is checked against the configured name and CA, which is the
 * authentication the RFC asks for. An MX host behind an unsigned MX RRset (DANE's "Trusted") does not.
 */
export function requireTlsBlock(hop: HopIdentity, route: Pick<Route, 'mode' | 'tls'>): RequireTlsBlock | undefined {
  const level = hostLevel(route.tls, hop);
  const relayChecked = route.mode === 'relay' && (level === 'verify' || level === 'secure');
  const dnssec = hop.dane?.mxDnssec === 'secure' && hop.dane.insecureMx !== true;
  const enforced = hop.sts?.mode === 'enforce';
  if (!relayChecked && !dnssec && !enforced) return 'not-found-securely';
  return relayChecked || enforced || level === 'dane' ? undefined : 'not-authenticated';
}
