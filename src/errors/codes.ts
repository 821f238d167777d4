import type { KnownCause, TlsRptFailure } from './causes.js';
import type { LocalErrorCode, UpstreamErrorCode, UpstreamStage } from './index.js';

/**
 * What every error code means, in one table the compiler holds to `Code` (index.ts): a code
 * without a row, or a row without a code, does not compile. Everything else derives from it: the
 * cause in metrics, stderr notices and the report (classify.ts, audit/error-cause.ts), the TLS-RPT
 * result type (mta-sts/result-type.ts), the SMTP reply a client hears (smtp/upstream-replies.ts)
 * and docs/errors.md (checked by test/unit/errors/error-codes.test.ts).
 */

/** A failed attempt as the client's reply tells it. */
export interface HopFailure {
  /** host:port, or `name[address]:port`. */
  label: string;
  stage: UpstreamStage;
  /** The server's reply code, when a reply was the failure. */
  replyCode?: number;
  /** The error's message, with the setting to change for a certificate (certificate-advice.ts). */
  detail: string;
  /** EHLO could not fall back to HELO (TLS required, or AUTH). */
  ehloRequired: boolean;
  /** The failure came inside TLS. */
  secure: boolean;
}

/** Always a 4xx (451): every doubt about a next hop keeps the mail with the client, which may do better later. */
export interface ReplyText {
  enhanced: `4.${number}.${number}`;
  text: string;
}

interface UpstreamFacts {
  /** The class whose instances carry it first (an `UpstreamError` may wrap a reply reader's error, keeping its code). */
  class: 'UpstreamError' | 'DaneError' | 'SmtpTimeoutError' | 'SmtpClosedError' | 'SmtpSyntaxError' | 'SmtpTooLongError';
  cause: KnownCause;
  resultType: TlsRptFailure;
  reply: (f: HopFailure) => ReplyText;
  about: string;
}

interface LocalFacts {
  class: 'ConfigError' | 'ReportOptionError' | 'AttrError' | 'SessionParseError';
  about: string;
}

const cannotConnect = (f: HopFailure): ReplyText => ({ enhanced: '4.4.1', text: `cannot connect to ${f.label}` });
const tlsFailed = (f: HopFailure): ReplyText => ({ enhanced: '4.7.5', text: `TLS with ${f.label} failed: ${f.detail}` });
/** Before TCP was up, a timeout or a close is a failed connect; after, a failed handshake. */
const connectOrTls = (f: HopFailure): ReplyText => (f.stage === 'connect' ? cannotConnect(f) : tlsFailed(f));
const lost = (f: HopFailure): ReplyText => ({ enhanced: '4.4.2', text: `lost the connection to ${f.label}` });

export const ERROR_CODES = {
  ERR_UPSTREAM_CONNECT: {
    class: 'UpstreamError',
    cause: 'connect',
    resultType: 'validation-failure',
    reply: (f) => (f.stage === 'tls' ? tlsFailed(f) : cannotConnect(f)),
    about: "TCP connect refused or unreachable (Node's error is the cause)",
  },
  ERR_UPSTREAM_TIMEOUT: {
    class: 'UpstreamError',
    cause: 'timeout',
    resultType: 'validation-failure',
    reply: connectOrTls,
    about: 'the TCP connect or the TLS handshake took longer than allowed',
  },
  ERR_UPSTREAM_TLS: {
    class: 'UpstreamError',
    cause: 'tls',
    resultType: 'validation-failure',
    reply: connectOrTls,
    about: "the TLS handshake failed (Node's or OpenSSL's error is the cause, and the audit line's errorCode)",
  },
  ERR_UPSTREAM_CLOSED: {
    class: 'UpstreamError',
    cause: 'closed',
    resultType: 'validation-failure',
    reply: connectOrTls,
    about: 'the server closed the connection during the TLS handshake',
  },
  // DANE: a chain that failed its TLSA records is a certificate's failure, as a failed PKIX check
  // is; a host DNSSEC ruled out could not be authenticated either (no connection: only its
  // transaction line and notice tell it, so no report column of its own).
  ERR_TLSA_MISMATCH: {
    class: 'DaneError',
    cause: 'certificate',
    resultType: 'tlsa-invalid',
    reply: tlsFailed,
    about: "under DANE, the certificate matched none of the host's usable TLSA records (RFC 7672)",
  },
  ERR_DANE_DEFERRED: {
    class: 'DaneError',
    cause: 'certificate',
    resultType: 'validation-failure',
    reply: (f) => ({ enhanced: '4.7.5', text: `${f.label} not used: ${f.detail}` }),
    about: 'DNSSEC ruled the host out (bogus or failed TLSA lookup, dane-only unmet): not connected to',
  },
  ERR_SMTP_TIMEOUT: {
    class: 'SmtpTimeoutError',
    cause: 'timeout',
    resultType: 'validation-failure',
    reply: (f) => ({ enhanced: '4.4.2', text: `${f.label} timed out` }),
    about: 'no complete SMTP reply within the wait',
  },
  ERR_SMTP_CLOSED: {
    class: 'SmtpClosedError',
    cause: 'closed',
    resultType: 'validation-failure',
    reply: lost,
    about: 'the server closed or reset the connection before its reply was complete',
  },
  ERR_SMTP_SYNTAX: {
    class: 'SmtpSyntaxError',
    cause: 'protocol',
    resultType: 'validation-failure',
    reply: lost,
    about: 'a reply line that is not `NNN text` or `NNN-text`, or a code that changes inside one reply',
  },
  ERR_SMTP_TOO_LONG: {
    class: 'SmtpTooLongError',
    cause: 'protocol',
    resultType: 'validation-failure',
    reply: lost,
    about: 'a reply line, or a reply, longer than the reader takes',
  },
  ERR_SMTP_GREETING: {
    class: 'UpstreamError',
    cause: 'protocol',
    resultType: 'validation-failure',
    reply: (f) => ({ enhanced: '4.4.1', text: `${f.label} greeted with ${f.replyCode}` }),
    about: 'the server greeted with something other than 220',
  },
  ERR_SMTP_PROTOCOL: {
    class: 'UpstreamError',
    cause: 'protocol',
    resultType: 'validation-failure',
    reply: (f) =>
      f.secure
        ? { enhanced: '4.4.1', text: `${f.label} refused EHLO inside TLS` }
        : f.ehloRequired
          ? { enhanced: '4.7.4', text: `${f.label} refused EHLO; TLS is required` }
          : { enhanced: '4.4.1', text: `${f.label} refused HELO` },
    about: 'the server refused EHLO (and HELO, where falling back was allowed)',
  },
  ERR_NO_STARTTLS: {
    class: 'UpstreamError',
    cause: 'protocol',
    resultType: 'starttls-not-supported',
    reply: (f) => ({ enhanced: '4.7.4', text: `TLS is required, but ${f.label} does not offer STARTTLS` }),
    about: 'TLS is required and the server does not offer STARTTLS',
  },
  ERR_STARTTLS_REFUSED: {
    class: 'UpstreamError',
    cause: 'protocol',
    resultType: 'starttls-not-supported',
    reply: (f) => ({ enhanced: '4.7.5', text: `${f.label} refused STARTTLS` }),
    about: 'the server answered STARTTLS with something other than 220',
  },
  ERR_STARTTLS_INJECTION: {
    class: 'UpstreamError',
    cause: 'protocol',
    resultType: 'validation-failure',
    reply: (f) => ({ enhanced: '4.7.5', text: `${f.label} failed the STARTTLS injection check` }),
    about: 'bytes arrived after the STARTTLS reply, before the handshake (CVE-2011-0411 and kin)',
  },
  ERR_SMTP_OUT_OF_STEP: {
    class: 'UpstreamError',
    cause: 'protocol',
    resultType: 'validation-failure',
    reply: lost,
    about: 'the server sent a reply nothing asked for: the connection is given up',
  },
  // AUTH follows TLS: needing it where TLS was not had is a TLS failure; a refusal is the server's word.
  ERR_AUTH_NEEDS_TLS: {
    class: 'UpstreamError',
    cause: 'tls',
    resultType: 'validation-failure',
    reply: (f) => ({ enhanced: '4.7.0', text: `AUTH to ${f.label} needs TLS, which it did not get` }),
    about: 'credentials are never sent in cleartext, and the connection has no TLS',
  },
  ERR_AUTH_NO_MECHANISM: {
    class: 'UpstreamError',
    cause: 'protocol',
    resultType: 'validation-failure',
    reply: (f) => ({ enhanced: '4.7.0', text: `${f.label} offers no usable AUTH mechanism` }),
    about: 'the server offers neither AUTH PLAIN nor LOGIN',
  },
  ERR_AUTH_FAILED: {
    class: 'UpstreamError',
    cause: 'protocol',
    resultType: 'validation-failure',
    reply: (f) => ({ enhanced: '4.7.0', text: `AUTH to ${f.label} failed with ${f.replyCode}` }),
    about: 'the server refused the credentials (the next MX is not tried: it would refuse them too)',
  },
  ERR_CONFIG: { class: 'ConfigError', about: 'the config file cannot be read or is not valid (names the file and the key)' },
  ERR_REPORT_OPTION: { class: 'ReportOptionError', about: 'an option of `ticketbooth audit` is not valid' },
  ERR_TLSMGR_ATTR: { class: 'AttrError', about: 'a tlsmgr request Postfix would refuse, or one bigger than ticketbooth takes' },
  ERR_SESSION_UNREADABLE: { class: 'SessionParseError', about: 'a stored or received TLS session cannot be read (not kept)' },
} as const satisfies { [C in UpstreamErrorCode]: UpstreamFacts } & { [C in LocalErrorCode]: LocalFacts };

/** The facts of one upstream code. */
export function upstreamFacts(code: UpstreamErrorCode): UpstreamFacts {
  return ERROR_CODES[code];
}

/** One of ours, whatever kind: what an audit line's `errorCode` names when it is not Node's. */
export function isOurCode(code: string): code is keyof typeof ERROR_CODES {
  return Object.hasOwn(ERROR_CODES, code);
}

/** One of our upstream codes (with a cause, a result type and a reply). */
export function isUpstreamCode(code: string): code is UpstreamErrorCode {
  return isOurCode(code) && 'cause' in ERROR_CODES[code];
}
