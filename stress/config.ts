/**
 * ticketbooth configs for the campaign. Limits are raised where the campaign itself is the load
 * (1,000 concurrent clients); timeouts are short where a fault would otherwise make the run wait.
 */

/** Timeouts for a healthy next hop under load: generous, so only a real fault trips them. */
export const LOAD_TIMEOUTS = {
  idleSeconds: 30,
  dataSeconds: 30,
  connectSeconds: 10,
  replySeconds: 30,
  dataDoneSeconds: 60,
  setupSeconds: 30,
  rcptBudgetSeconds: 60,
};

/** Timeouts for the fault matrix: a stalled next hop costs about a second. */
export const FAULT_TIMEOUTS = {
  idleSeconds: 30,
  dataSeconds: 30,
  connectSeconds: 1,
  replySeconds: 1,
  dataDoneSeconds: 1.5,
  setupSeconds: 2,
  rcptBudgetSeconds: 4,
};

/** A `type: smtp` listener relaying everything to 127.0.0.1:`nextHop`, STARTTLS required (certificate not checked). */
export function smtpListener(
  name: string,
  nextHop: number,
  over: Record<string, unknown> = {},
): { name: string } & Record<string, unknown> {
  return {
    name,
    type: 'smtp',
    listen: '127.0.0.1:0',
    hostname: 'tb.stress.test',
    maxConnections: 2500,
    route: { mode: 'relay', host: '127.0.0.1', port: nextHop },
    tls: { level: 'encrypt' },
    timeouts: LOAD_TIMEOUTS,
    ...over,
  };
}

/** A `type: tunnel` listener to a TLS server on 127.0.0.1:`port` whose certificate names `localhost`. */
export function tunnelListener(name: string, port: number, caFile: string): { name: string } & Record<string, unknown> {
  return {
    name,
    type: 'tunnel',
    listen: '127.0.0.1:0',
    maxConnections: 2500,
    upstream: { host: '127.0.0.1', port, servername: 'localhost', ca: caFile },
    timeouts: { setupSeconds: 30, idleSeconds: 60 },
  };
}
