import type { SmtpTransactionEvent } from '../audit/events.js';
import type { Route } from './routing.js';
import { TLS_REQUIRED_KEYWORD } from './spool/tls-required-word.js';

/**
 * `TLS-Required: No` (RFC 8689 3, 4.3): the sender asks that the recipient domain's TLS policies
 * (MTA-STS, DANE) be ignored, so that a message about broken TLS, such as a TLS-RPT report (RFC
 * 8460 3), still arrives. The header is read only in DATA, after ticketbooth chose the next hop and
 * set up its TLS at the first RCPT, so the header itself cannot change anything. The same request
 * made on MAIL (`X-TLS-REQUIRED=NO`, announced as `X-TLS-REQUIRED`) comes in time: the transaction
 * then takes the route without the recipient's policies. What the route's own configuration asks
 * (a level of `encrypt`, `verify`, `secure` or `dane-only`, a CA) stays: that is this operator's
 * policy, not the recipient domain's. REQUIRETLS on the same MAIL wins (RFC 8689 4.1: the header
 * is then ignored): nothing is set aside. A message the spool holds keeps the request for its retries.
 */
export { TLS_REQUIRED_KEYWORD };

type Ignored = NonNullable<SmtpTransactionEvent['policyBypass']>['ignored'];

/** One derived route per configured one, so its connections share a connection-cache slot (poolKey digests the route). */
const bypassRoutes = new WeakMap<Route, Route>();
const ignoredBy = new WeakMap<Route, Ignored>();

/**
 * The route a recipient of this envelope takes: the configured one, or with TLS-Required: No that
 * route without MTA-STS and with DANE's `dane` level as `may` (STARTTLS when offered, certificate
 * not checked, cleartext retry): a route that differs, so its connections never carry other mail.
 */
export function routeForEnvelope(route: Route, env: { requireTls?: true; tlsRequiredNo?: true }): Route {
  if (!env.tlsRequiredNo || env.requireTls) return route;
  let bypass = bypassRoutes.get(route);
  if (bypass === undefined) {
    const ignored: Ignored = [...(route.tls.mtaSts ? ['mta-sts' as const] : []), ...(route.tls.level === 'dane' ? ['dane' as const] : [])];
    bypass = { ...route, tls: { ...route.tls, mtaSts: false, level: route.tls.level === 'dane' ? 'may' : route.tls.level } };
    bypassRoutes.set(route, bypass);
    ignoredBy.set(bypass, ignored);
  }
  return bypass;
}

/** The transaction line's `policyBypass` for a hop on a route from `routeForEnvelope` that set policies aside. */
export function policyBypassOf(route: Route | undefined): SmtpTransactionEvent['policyBypass'] {
  const ignored = route && ignoredBy.get(route);
  return ignored ? { why: 'tls-required-no', ignored } : undefined;
}
