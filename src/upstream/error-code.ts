/**
 * The stable code an audit line carries for a failed upstream attempt, read from the error itself,
 * never from its text: Node's own code where there is one (`ECONNREFUSED`, `ECONNRESET`,
 * `ERR_TLS_CERT_ALTNAME_INVALID`, OpenSSL's `DEPTH_ZERO_SELF_SIGNED_CERT` ...), else ours
 * (`ERR_UPSTREAM_TIMEOUT`, `ERR_NO_STARTTLS`, `ERR_SMTP_TIMEOUT` ...).
 * Our wrapping errors keep what they wrapped as `cause`; the innermost code is the most specific.
 */
export function errorCodeOf(err: unknown): string {
  return innermostCode(err, 0) ?? 'ERR_UNKNOWN';
}

function innermostCode(err: unknown, depth: number): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const inner = depth < 4 ? innermostCode((err as { cause?: unknown }).cause, depth + 1) : undefined;
  if (inner !== undefined) return inner;
  const code = (err as { code?: unknown }).code;
  // A code is a short identifier; anything else (a number, free text) is not one to match on.
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,63}$/.test(code) ? code : undefined;
}
