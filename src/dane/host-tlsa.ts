import { decide, type DaneDecision, type DaneLevel, type TlsaLookup } from './decision.js';

/**
 * Where one host's TLSA records are looked up, as RFC 7672 2.2.1–2.2.3 and Postfix (dane_init in
 * smtp_tls_policy.c, tls_dane_resolve in tls_dane.c) do it:
 * - an unsigned MX RRset: under `dane-only`, or `tls.daneInsecureMx: may`, TLSA is not asked; under
 *   `dane` with `daneInsecureMx: dane` (Postfix 3.6+'s default) it is, and a match is only Trusted;
 * - the host's addresses secure (their CNAME chain included): TLSA at the expanded name, else, when
 *   the host is an alias and nothing is there, at the alias;
 * - addresses insecure, the host an alias whose own CNAME is signed: TLSA at the alias;
 * - otherwise not asked (`insecure`).
 * The name the records come from is the base domain: SNI and the first DANE-TA reference name.
 */

/** What DNS said of one host before TLSA. */
export interface HostDnssec {
  hostName: string;
  port: number;
  /** The MX RRset was validated; undefined: there is none (mode relay, an implicit MX). */
  mxSecure?: boolean;
  /** The address lookup was validated, CNAME chain included. */
  addressSecure: boolean;
  /** Where the addresses were found: the end of the host's CNAME chain (the host name when none). */
  addressName: string;
}

/** Postfix's smtp_tls_dane_insecure_mx_policy, without `encrypt` (what `dane` gives a host with unusable records anyway). */
export type InsecureMxPolicy = 'dane' | 'may';

type Found = Awaited<ReturnType<TlsaLookup['lookup']>> & { baseDomain: string };

export async function daneForHost(h: HostDnssec, level: DaneLevel, insecureMx: InsecureMxPolicy, tlsa: TlsaLookup): Promise<DaneDecision> {
  const mxInsecure = h.mxSecure === false;
  // The audit's `mxDnssec`; without an MX RRset, the host's own addresses (what a relay host has).
  const mxSecure = h.mxSecure ?? h.addressSecure;
  const found = mxInsecure && (level === 'dane-only' || insecureMx === 'may') ? notAsked(h.hostName) : await lookupAtBase(h, tlsa);
  const { state, ...rest } = found;
  return decide(level, mxSecure, state, { ...rest, ...(mxInsecure ? { insecureMx: true as const } : {}) });
}

async function lookupAtBase(h: HostDnssec, tlsa: TlsaLookup): Promise<Found> {
  const host = bare(h.hostName);
  const expanded = bare(h.addressName);
  const alias = expanded !== host;
  if (!h.addressSecure) {
    if (!alias) return notAsked(host);
    const cname = await tlsa.aliasSecurity(host);
    if (cname === 'failed') return { ...notAsked(host), state: 'failed', reason: 'tlsa-lookup-failed', until: 0 };
    return cname === 'secure' ? { ...(await tlsa.lookup(host, h.port)), baseDomain: host } : notAsked(host);
  }
  if (alias) {
    const atTarget = await tlsa.lookup(expanded, h.port);
    // A lookup error at the target defers; only "nothing there" sends us to the alias (Postfix).
    if (atTarget.state !== 'none' && atTarget.state !== 'insecure') return { ...atTarget, baseDomain: expanded };
  }
  return { ...(await tlsa.lookup(host, h.port)), baseDomain: host };
}

function notAsked(host: string): Found {
  return { state: 'insecure', records: [], changed: false, until: Infinity, baseDomain: bare(host) };
}

function bare(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}
