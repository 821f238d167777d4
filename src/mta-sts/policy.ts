/**
 * MTA-STS (RFC 8461) as text: the `_mta-sts` TXT record and the policy file, parsed strictly (a
 * policy that does not parse is no policy: RFC 8461 3.2 says the sender must not apply it), and
 * the `mx` pattern match.
 */

export type StsMode = 'enforce' | 'testing' | 'none';

export interface StsPolicy {
  mode: StsMode;
  /** Patterns as published: `mx.example.com` or `*.example.com` (exactly one label more). */
  mx: string[];
  maxAgeSeconds: number;
  /** The policy file's text as fetched (for TLS-RPT's `policy-string`), without the final line end. */
  text: string;
}

/** RFC 8461 3.2: max_age at most a year (31557600 s). */
export const MAX_AGE_LIMIT_S = 31_557_600;
/** RFC 8461 3.3: a policy file larger than this is not read. */
export const MAX_POLICY_BYTES = 64 * 1024;

/**
 * The policy id of the domain's TXT records: exactly one must start with `v=STSv1` (RFC 8461 3.1);
 * its `id` is 1–32 letters and digits. Several, or one without a valid id, is no policy.
 */
export function parseStsTxt(records: readonly string[]): { id: string } | { error: string } {
  const sts = records.filter((r) => /^v=STSv1\s*(;|$)/.test(r));
  if (sts.length === 0) return { error: 'no v=STSv1 record' };
  if (sts.length > 1) return { error: `${sts.length} v=STSv1 records (exactly one allowed)` };
  const fields = new Map<string, string>();
  for (const part of sts[0].split(';')) {
    const m = /^\s*([A-Za-z0-9_.-]+)=([\x21-\x3a\x3c\x3e-\x7e]*)\s*$/.exec(part);
    if (m) fields.set(m[1], m[2]);
  }
  const id = fields.get('id');
  if (!id || !/^[A-Za-z0-9]{1,32}$/.test(id)) return { error: 'no valid id' };
  return { id };
}

/** The policy file (RFC 8461 3.2): `key: value` lines, CRLF or LF; unknown keys ignored; version, mode and max_age required, mx unless mode none. */
export function parseStsPolicy(body: string): StsPolicy | { error: string } {
  const text = body.replace(/\r?\n$/, '');
  const values = new Map<string, string[]>();
  for (const line of text.split(/\r?\n/)) {
    if (line === '') continue;
    const m = /^([A-Za-z0-9_]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!m) return { error: `not a "key: value" line: ${line.slice(0, 60)}` };
    values.set(m[1], [...(values.get(m[1]) ?? []), m[2]]);
  }
  const one = (k: string): string | undefined => values.get(k)?.[0];
  if (one('version') !== 'STSv1') return { error: 'version is not STSv1' };
  const mode = one('mode');
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none')
    return { error: `mode ${mode ?? '(none)'} is not enforce, testing or none` };
  const maxAge = one('max_age');
  if (!maxAge || !/^\d{1,10}$/.test(maxAge) || Number(maxAge) > MAX_AGE_LIMIT_S)
    return { error: `max_age ${maxAge ?? '(none)'} is not 0..${MAX_AGE_LIMIT_S}` };
  const mx = (values.get('mx') ?? []).map((p) => p.toLowerCase().replace(/\.$/, ''));
  if (mode !== 'none' && mx.length === 0) return { error: 'no mx pattern' };
  if (mx.some((p) => !/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(p))) return { error: 'an mx pattern is not a host name or *.name' };
  return { mode, mx, maxAgeSeconds: Number(maxAge), text };
}

/** RFC 8461 4.1: `*.example.com` matches exactly one more label (`mx.example.com`, not `a.mx.example.com` nor `example.com`). */
export function mxMatches(patterns: readonly string[], host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((p) => {
    if (!p.startsWith('*.')) return p === h;
    const dot = h.indexOf('.');
    return dot > 0 && h.slice(dot + 1) === p.slice(2);
  });
}
