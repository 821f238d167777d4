/**
 * How long a graceful upstream close may take: after `end()`, the server's close_notify and FIN,
 * with any tickets still in flight, are awaited this long before the socket is destroyed.
 */
export const CLOSE_GRACE_MS = 2000;

/**
 * At shutdown, how long a listener lets the sessions it cut settle: longer than the close grace,
 * so their upstreams' graceful closes (late tickets, the audit line) complete before the store
 * and the log are closed under them.
 */
export const CUT_SETTLE_MS = CLOSE_GRACE_MS + 1000;
