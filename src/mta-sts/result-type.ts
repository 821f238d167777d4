/**
 * TLS-RPT's result types (RFC 8460 4.3.2) for what an attempt's error code says: the audit lines
 * carry them, so `ticketbooth tlsrpt` counts what happened without reinterpreting errors.
 */
export function resultTypeOf(errorCode: string | undefined): string {
  switch (errorCode) {
    case undefined:
      return 'success';
    case 'ERR_NO_STARTTLS':
    case 'ERR_STARTTLS_REFUSED':
      return 'starttls-not-supported';
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return 'certificate-host-mismatch';
    case 'CERT_HAS_EXPIRED':
    case 'CERT_NOT_YET_VALID':
      return 'certificate-expired';
    case 'ERR_TLSA_MISMATCH':
      return 'tlsa-invalid';
    default:
      return /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|CHAIN/.test(errorCode) ? 'certificate-not-trusted' : 'validation-failure';
  }
}
