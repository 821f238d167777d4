/**
 * Envelope syntax of MAIL FROM / RCPT TO (RFC 5321 4.1.2, RFC 6531 for UTF-8): the path in angle
 * brackets, then ESMTP parameters. Parsing only; what the parameters mean is the session's business.
 */

export interface EnvelopeArg {
  /** The mailbox without brackets or source route; '' for the null reverse path `<>`. */
  address: string;
  /** Lower-cased domain ('' for `<>` and for a bare `postmaster`). */
  domain: string;
  /** The address holds non-ASCII characters (needs SMTPUTF8). */
  utf8: boolean;
  /** Upper-cased keyword → value (undefined for a keyword without `=`). */
  params: Map<string, string | undefined>;
  /** Upper-cased keyword → the parameter word as received (passed on byte for byte). */
  words: Map<string, string>;
}

export type EnvelopeParse = { ok: true; arg: EnvelopeArg } | { ok: false; reason: 'syntax' | 'address' };

const ATEXT = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\u{10FFFF}-]+$/u;
const LABEL = /^([A-Za-z0-9\u0080-\u{10FFFF}]([A-Za-z0-9\u0080-\u{10FFFF}-]{0,61}[A-Za-z0-9\u0080-\u{10FFFF}])?)$/u;
const PARAM = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e\u0080-\u{10FFFF}]+))?$/u;

/** `arg` is what follows the verb, e.g. `FROM:<a@b> SIZE=10`; `keyword` is FROM or TO. */
export function parseEnvelopeArg(arg: string, keyword: 'FROM' | 'TO'): EnvelopeParse {
  const m = new RegExp(`^${keyword}:\\s*`, 'i').exec(arg);
  if (!m) return { ok: false, reason: 'syntax' };
  const rest = arg.slice(m[0].length);
  if (!rest.startsWith('<')) return { ok: false, reason: 'syntax' };
  const close = closingBracket(rest);
  if (close < 0) return { ok: false, reason: 'syntax' };
  let path = rest.slice(1, close);
  const tail = rest.slice(close + 1);
  if (tail !== '' && !tail.startsWith(' ')) return { ok: false, reason: 'syntax' };

  const params = new Map<string, string | undefined>();
  const words = new Map<string, string>();
  for (const word of tail.split(' ').filter((w) => w !== '')) {
    const p = PARAM.exec(word);
    if (!p || params.has(p[1].toUpperCase())) return { ok: false, reason: 'syntax' };
    params.set(p[1].toUpperCase(), p[2]);
    words.set(p[1].toUpperCase(), word);
  }

  // A source route (`@a,@b:user@c`) must be accepted and ignored (RFC 5321 4.1.2, C).
  const route = /^@[^:]+:/.exec(path);
  if (route) path = path.slice(route[0].length);
  const utf8 = /[\u0080-\u{10FFFF}]/u.test(path);
  if (path === '')
    return keyword === 'FROM' ? { ok: true, arg: { address: '', domain: '', utf8, params, words } } : { ok: false, reason: 'address' };
  if (keyword === 'TO' && path.toLowerCase() === 'postmaster') return { ok: true, arg: { address: path, domain: '', utf8, params, words } };
  const at = path.lastIndexOf('@');
  if (at <= 0) return { ok: false, reason: 'address' };
  const local = path.slice(0, at);
  const domain = path.slice(at + 1);
  if (!validLocal(local) || !validDomain(domain) || path.length > 320) return { ok: false, reason: 'address' };
  return { ok: true, arg: { address: path, domain: domain.toLowerCase(), utf8, params, words } };
}

function closingBracket(s: string): number {
  let quoted = false;
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (c === '>' && !quoted) return i;
  }
  return -1;
}

function validLocal(local: string): boolean {
  if (local.length > 64 * 4) return false;
  if (local.startsWith('"')) return /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\u{10FFFF}]|\\[\x20-\x7e])*"$/u.test(local);
  return local.split('.').every((atom) => ATEXT.test(atom));
}

export function validDomain(domain: string): boolean {
  if (domain.startsWith('[')) return /^\[(?:[0-9.]+|IPv6:[0-9A-Fa-f:.]+)\]$/i.test(domain);
  if (domain.length > 255) return false;
  return domain.split('.').every((label) => LABEL.test(label));
}

/** For the audit log: the address, its domain, or nothing, as configured. */
export function forLog(address: string, mode: 'none' | 'domain' | 'full'): string | undefined {
  if (mode === 'none') return undefined;
  if (mode === 'full') return address;
  const at = address.lastIndexOf('@');
  return at >= 0 ? address.slice(at + 1).toLowerCase() : '';
}
