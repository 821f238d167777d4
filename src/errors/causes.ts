/**
 * The words a failed upstream attempt is told in: a cause (metric label, stderr notice, report
 * column: a few, so cardinality stays bounded) and TLS-RPT's result type (RFC 8460 4.3.2). Both
 * are file formats (metrics, audit lines, reports): add words, never rename them.
 */
export const UPSTREAM_ERROR_CAUSES = ['connect', 'timeout', 'closed', 'certificate', 'tls', 'protocol', 'other'] as const;
export type UpstreamErrorCause = (typeof UPSTREAM_ERROR_CAUSES)[number];

/** What one of ticketbooth's own upstream codes may be: `other` is for codes nobody classified. */
export type KnownCause = Exclude<UpstreamErrorCause, 'other'>;

/** RFC 8460 4.3.2: the result types a failed session can have (`success` is none of these). */
export type TlsRptFailure =
  | 'starttls-not-supported'
  | 'certificate-host-mismatch'
  | 'certificate-expired'
  | 'certificate-not-trusted'
  | 'validation-failure'
  | 'tlsa-invalid'
  | 'dnssec-invalid'
  | 'dane-required'
  | 'sts-policy-fetch-error'
  | 'sts-policy-invalid'
  | 'sts-webpki-invalid';

export type TlsRptResult = 'success' | TlsRptFailure;
