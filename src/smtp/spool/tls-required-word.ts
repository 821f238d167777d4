/**
 * The MAIL parameter keyword (announced in EHLO) by which a client says `TLS-Required: No` before
 * RCPT (see ../tls-required-no.ts). Here, not there, because the spool resubmits with it and imports
 * nothing from the session's side.
 */
export const TLS_REQUIRED_KEYWORD = 'X-TLS-REQUIRED';
