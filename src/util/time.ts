/** The longest a TLS 1.3 ticket may be used (RFC 8446 4.6.1), and so any cached session. */
export const SEVEN_DAYS_S = 7 * 24 * 3600;
