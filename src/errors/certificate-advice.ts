import { isExpired, isNameMismatch } from './classify.js';

/** The listener types whose upstream certificates ticketbooth checks (config/schema.ts `listenerSchemas`). */
export type ListenerType = 'tunnel' | 'smtp' | 'http';

interface TrustSettings {
  /** Where the CA bundle goes (PEM file), most specific first. */
  ca: readonly string[];
  /** What names the host the certificate must carry. */
  name: string;
}

/**
 * The config keys (dotted paths into a listener; `<origin>` an http listener's origin key) that
 * decide how each listener type checks an upstream certificate: what an operator changes when a
 * check fails. test/unit/errors/error-codes.test.ts sets each in a config that must parse.
 */
export const TRUST_SETTINGS = {
  tunnel: { ca: ['upstream.ca'], name: 'upstream.servername' },
  smtp: { ca: ['tls.ca', 'route.tls.ca'], name: 'route.host' },
  http: { ca: ['upstreams.<origin>.ca', 'defaults.ca'], name: 'upstreams.<origin>.servername' },
} as const satisfies Record<ListenerType, TrustSettings>;

const quoted = (keys: readonly string[]): string => keys.map((k) => `\`${k}\``).join(' or ');

/** Node's hint for a missing CA names a Node flag; ticketbooth's setting is what to change. */
const NODE_HINT = /;? ?if the root CA is installed locally, try running Node\.js with --use-system-ca/;

/** OpenSSL's words for a chain that leads to no CA it was given: the CA setting is the remedy. */
const UNKNOWN_ISSUER: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_UNTRUSTED',
]);

/**
 * An error's message for a person, where its code says which setting decides: a CA the chain does
 * not lead to, a name the certificate does not carry, a certificate out of date. Node's hint is
 * replaced; other messages are returned as they are. `type` unknown (a listener a reload removed):
 * the CA setting is named as every type spells it.
 */
export function withCertificateAdvice(
  message: string,
  code: string | undefined,
  type: ListenerType | undefined,
  checkedBy?: 'dane' | 'mta-sts',
): string {
  // Under DANE or MTA-STS the check is the policy's: a chain to an unknown CA is what a machine in
  // the middle presents, so no setting is the remedy, least of all trusting its issuer.
  if (checkedBy !== undefined) return withoutNodeHint(message);
  const advice = code === undefined ? undefined : adviceFor(code, type);
  return advice === undefined ? message : `${withoutNodeHint(message)}; ${advice}`;
}

/** Node's hint names a Node flag, which is never the remedy here: gone from what a client reads too. */
export function withoutNodeHint(message: string): string {
  return message.replace(NODE_HINT, '');
}

function adviceFor(code: string, type: ListenerType | undefined): string | undefined {
  if (UNKNOWN_ISSUER.has(code)) {
    const where = type ? quoted(TRUST_SETTINGS[type].ca) : quoted(Object.values(TRUST_SETTINGS).map((s) => s.ca[0]));
    return `set ${where} to a PEM file holding the CA that issued the server's certificate`;
  }
  if (isNameMismatch(code))
    return `the certificate does not carry the name asked for${type ? `: set \`${TRUST_SETTINGS[type].name}\` to a name it carries` : ''}`;
  if (isExpired(code)) return "the server's certificate is outside its validity dates: renew it there (or check this clock)";
  return undefined;
}
