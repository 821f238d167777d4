import * as z from 'zod';
import { connectionCacheSchema, hostPort, listenerFields, onePasswordSource, passwordSource, port, withClientLimit } from './common.js';
import { groups, tlsVersion } from './tls.js';

/**
 * The `type: smtp` listener (a smarthost) and the top-level `dns` section. Kept apart from
 * schema.ts so the SMTP shape reads in one place; schema.ts lists it in `listenerSchemas`.
 */

/** Postfix's level names (smtp_tls_security_level); `dane` and `dane-only` need `dns.servers`. */
export const tlsLevels = ['none', 'may', 'encrypt', 'dane', 'dane-only', 'verify', 'secure'] as const;
export type TlsLevel = (typeof tlsLevels)[number];

export const smtpTlsSchema = z.strictObject({
  /** Default: `may` for mode mx, `secure` for mode relay. */
  level: z.enum(tlsLevels).optional(),
  /** PEM CA bundle file for verify/secure; the system CAs when absent. */
  ca: z.string().min(1).optional(),
  minVersion: tlsVersion.optional(),
  maxVersion: tlsVersion.optional(),
  ciphers: z.string().min(1).optional(),
  groups: groups.optional(),
  /**
   * Apply the recipient domain's MTA-STS policy (RFC 8461) in mode mx: `enforce` restricts delivery
   * to the policy's MX hosts with a verified certificate. Default: on at levels `may` and `dane`.
   */
  mtaSts: z.boolean().optional(),
  /**
   * Under `dane`, an MX host whose MX RRset is unsigned but whose own TLSA records are secure
   * (Postfix's smtp_tls_dane_insecure_mx_policy): `dane` (default, as Postfix 3.6+) uses them, a
   * match is Trusted, a mismatch fails; `may` ignores them (opportunistic TLS).
   */
  daneInsecureMx: z.enum(['dane', 'may']).optional(),
});

/** Credentials for AUTH to the next hop: the password from a file or an environment variable. */
export const smtpAuthSchema = z.strictObject({ username: z.string().min(1), ...passwordSource }).refine(...onePasswordSource);

const routeCommon = {
  /** Overrides the listener's `tls` for this route. */
  tls: smtpTlsSchema.optional(),
  auth: smtpAuthSchema.optional(),
};

export const smtpRouteSchema = z.discriminatedUnion('mode', [
  z.strictObject({
    mode: z.literal('mx'),
    /** MX records carry no port: 25, unless a test or a port-mapped network says otherwise. */
    port: port.default(25),
    ...routeCommon,
  }),
  z.strictObject({
    mode: z.literal('relay'),
    host: z.string().min(1),
    port: port.default(25),
    ...routeCommon,
  }),
]);

const seconds = z.number().positive();

export const smtpListenerSchema = z
  .strictObject({
    type: z.literal('smtp'),
    ...listenerFields(100),
    /** Greeting and EHLO name, on both sides; default the system's host name. */
    hostname: z.string().min(1).optional(),
    /**
     * What the clients speak: `smtp` (RFC 5321), or `lmtp` (RFC 2033: LHLO, and one reply per
     * recipient after the data, so one transaction may go to many next hops with each recipient
     * told its own hop's verdict).
     */
    protocol: z.enum(['smtp', 'lmtp']).default('smtp'),
    /**
     * Next hops one client transaction may span under `lmtp`, or under `smtp` with a `spool`; a
     * recipient for one more gets 452 and comes in the client's next transaction. Under `smtp`
     * without a spool a transaction has one next hop.
     */
    maxNextHops: z.number().int().positive().default(20),
    route: smtpRouteSchema,
    tls: smtpTlsSchema.optional(),
    /** Per-domain overrides: `example.org` matches that domain, `.example.org` its subdomains. */
    transport: z.record(z.string().min(1), smtpRouteSchema).default({}),
    /** Advertised as SIZE; larger messages get 552 5.3.4. */
    maxMessageSize: z
      .number()
      .int()
      .positive()
      .default(50 * 1024 * 1024),
    /** Longest text line in a message, without CRLF (RFC 5322 2.1.1: 998). */
    maxLineLength: z.number().int().min(78).default(998),
    maxRecipients: z.number().int().positive().default(1000),
    timeouts: z
      .strictObject({
        /**
         * Waiting for the client's next command (RFC 5321 4.5.3.2.7: 5 minutes): a deadline for the
         * whole line, not reset by partial bytes; also how long unread replies may wait.
         */
        idleSeconds: seconds.default(300),
        /** Between two chunks of the client's message (RFC 5321 4.5.3.2.5: 3 minutes). */
        dataSeconds: seconds.default(180),
        /**
         * Bytes/s a message must average: all of DATA gets `dataSeconds` plus 1 s per this many bytes
         * (Postfix's smtpd_min_data_rate, 500). 0: only the per-chunk timeout.
         */
        minDataRate: z.number().int().nonnegative().default(500),
        /** Upstream TCP connect, and separately the TLS handshake. */
        connectSeconds: seconds.default(30),
        /** Each upstream reply (RFC 5321 4.5.3.2: 5 minutes). */
        replySeconds: seconds.default(300),
        /** The upstream's reply to the final dot (RFC 5321 4.5.3.2.6: 10 minutes). */
        dataDoneSeconds: seconds.default(600),
        /**
         * One upstream host's whole setup (connect, greeting, EHLO, STARTTLS, TLS, AUTH): a stalled
         * first MX must leave time for the next one within the client's own RCPT timeout.
         */
        setupSeconds: seconds.default(60),
        /**
         * Total time a client's RCPT may wait for a next hop (DNS and every host tried); then 451.
         * Below Postfix's smtp_rcpt_timeout (300 s) so the client gets an answer, not a timeout.
         */
        rcptBudgetSeconds: seconds.default(240),
      })
      .prefault({}),
    /**
     * Where the SMTP front holds a message that some next hops took and others refused (it then
     * answers 250 and owes those recipients a retry or a notification). With it, one SMTP
     * transaction may span up to `maxNextHops` next hops; without it, one. Under `lmtp` unused.
     */
    spool: z
      .strictObject({
        /** Created if absent (mode 0700); one listener's own. */
        dir: z.string().min(1),
        /** Between tries of a recipient whose next hop failed temporarily (Postfix's minimal_backoff_time). */
        retrySeconds: seconds.default(300),
        /** Tries end this long after the message arrived; what still fails is notified (Postfix's maximal_queue_lifetime, 5 days). */
        maxAgeSeconds: seconds.default(5 * 24 * 3600),
      })
      .optional(),
    /** Envelope addresses in the audit log: none, domains only, or full addresses. */
    logAddresses: z.enum(['none', 'domain', 'full']).default('none'),
    /**
     * Upstream connections kept between transactions and shared by the listener's clients
     * (Postfix's connection cache): a client that sends one message per connection then costs the
     * next hop no handshake. Limits as Postfix's smtp_connection_cache_time_limit (2 s; longer
     * here, as one cache serves every client), smtp_connection_reuse_time_limit (300 s) and
     * smtp_connection_reuse_count_limit (none).
     */
    connectionCache: connectionCacheSchema(5)
      .extend({
        /** The RSET sent before each reuse (and after an abandoned transaction) must be answered within this. */
        probeSeconds: seconds.default(2),
      })
      .prefault({}),
  })
  .transform(withClientLimit);

export const dnsSchema = z.strictObject({
  /** `IP` or `IP:PORT` (`[v6]:PORT`); the system resolver's servers when absent. */
  servers: z
    .array(hostPort.or(z.string().regex(/^[0-9a-fA-F:.]+$/, 'expected an IP address')))
    .min(1)
    .optional(),
  timeoutSeconds: seconds.default(5),
  tries: z.number().int().min(1).max(10).default(2),
});

export type SmtpListenerConfig = z.infer<typeof smtpListenerSchema>;
export type SmtpRouteConfig = z.infer<typeof smtpRouteSchema>;
export type SmtpTlsConfig = z.infer<typeof smtpTlsSchema>;
export type SmtpAuthConfig = z.infer<typeof smtpAuthSchema>;
export type DnsConfig = z.infer<typeof dnsSchema>;

/** Top-level `mtaSts`: how policies are fetched (RFC 8461 3.3). */
export const mtaStsSchema = z.strictObject({
  /** PEM trust anchors for policy hosts; the system CAs when absent. */
  ca: z.string().min(1).optional(),
  /** An HTTP proxy (`http://host:port`) that policy fetches go through, CONNECT to port 443. */
  proxy: z.url({ protocol: /^https?$/ }).optional(),
  /** The whole fetch (RFC 8461 3.3 suggests a minute at most). */
  timeoutSeconds: seconds.default(10),
});
export type MtaStsConfig = z.infer<typeof mtaStsSchema>;
