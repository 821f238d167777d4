import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertPair } from './certs.js';
import { tlsaOf } from './tlsa.js';

/**
 * The DANE conformance cases (issue 22): each a next hop, its MX host's DNS (in the signed
 * `cf.test` or the unsigned `pl.test`) and the chain the host sends. Postfix's verdict is not
 * written here: the test asks posttls-finger for it, live.
 */

export interface DaneCase {
  id: string;
  what: string;
  /** The next-hop (recipient) domain. */
  nextHop: string;
  /** The MX host's server; cases naming the same one share it (and its chain). */
  server: string;
  chain: (k: Keys) => CertPair;
  /** Zone-file lines with absolute names (each goes to the zone its owner is in), given the server's address and the port every MX host listens on. */
  dns: (k: Keys, addr: string, port: number) => string[];
  /** The server's TLSA RRset has a corrupt signature (unbound: SERVFAIL). */
  bogusTlsa?: boolean;
  /** Both sides trust the private CA (`Keys.ca`): ticketbooth's route `ca`, smtp(8)'s smtp_tls_CAfile. */
  ca?: boolean;
}

/** One private CA and the leaves the cases send; their files are in `dir`. */
export interface Keys {
  dir: string;
  /** Self-signed, for DANE-EE. */
  ee: CertPair;
  ca: CertPair;
  /** Issued by `ca`, naming every `h-ta*` host; `taChain` sends the CA too. */
  taLeaf: CertPair;
  taChain: CertPair;
  /** Issued by `ca`: expired (naming the hosts), misnamed, and naming only `sharea.cf.test` (a next hop, not the MX host). */
  taExpired: CertPair;
  taMisnamed: CertPair;
  taShared: CertPair;
  /** Self-signed: expired; naming another domain. */
  eeExpired: CertPair;
  eeMisnamed: CertPair;
}

const TA_HOSTS = ['h-ta1.cf.test', 'h-ta2.cf.test', 'h-ta3.cf.test', 'h-ta4.cf.test', 'h-ta5.cf.test', 'h-ta6.cf.test'];

export function makeKeys(): Keys {
  const dir = mkdtempSync(join(tmpdir(), 'tb-conform-'));
  const make = (name: string, names: string[], days: number, ca?: CertPair): CertPair => openssl(dir, name, { names, days, issuer: ca });
  const ca = openssl(dir, 'ca', { names: ['conformance CA'], days: 7, ca: true });
  const taLeaf = make('ta', TA_HOSTS, 7, ca);
  const sent = (p: CertPair): CertPair => chainWith(p, ca);
  return {
    dir,
    ee: make('ee', ['h-ee.cf.test'], 7),
    ca,
    taLeaf,
    taChain: sent(taLeaf),
    taExpired: sent(make('ta-expired', ['h-tax.cf.test'], -1, ca)),
    taMisnamed: sent(make('ta-misnamed', ['mx.elsewhere.example'], 7, ca)),
    taShared: sent(make('ta-shared', ['sharea.cf.test'], 7, ca)),
    eeExpired: make('ee-expired', ['h-eex.cf.test'], -1),
    eeMisnamed: make('ee-misnamed', ['mx.elsewhere.example'], 7),
  };
}

/**
 * A P-256 key and certificate made by the openssl CLI: a self-signed CA (`ca`), or a leaf for
 * `names`, self-signed or issued by `issuer`. `days` -1 gives one that has already expired.
 */
function openssl(dir: string, name: string, o: { names: string[]; days: number; issuer?: CertPair; ca?: true }): CertPair {
  const { names, days, issuer } = o;
  const keyFile = join(dir, `${name}-key.pem`);
  const certFile = join(dir, `${name}.pem`);
  const run = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  const ext = o.ca
    ? ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign']
    : [`subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`, 'basicConstraints=CA:FALSE'];
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-subj', `/CN=${names[0]}`];
  // x509 -req for every certificate: `req -x509` refuses a negative -days.
  const csr = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, ext.join('\n') + '\n');
  run(['req', '-new', ...newKey, '-out', csr]);
  const signer = issuer ? ['-CA', issuer.certFile, '-CAkey', issuer.keyFile, '-CAcreateserial'] : ['-signkey', keyFile];
  run(['x509', '-req', '-in', csr, ...signer, '-days', String(days), '-extfile', extFile, '-out', certFile]);
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
}

/** The leaf followed by its CA, as a server that sends the trust anchor does. */
function chainWith(leaf: CertPair, ca: CertPair): CertPair {
  const cert = leaf.cert + ca.cert;
  const certFile = leaf.certFile.replace(/\.pem$/, '-chain.pem');
  writeFileSync(certFile, cert);
  return { ...leaf, cert, certFile };
}

const WRONG = `3 1 1 ${createHash('sha256').update('no such key').digest('hex').toUpperCase()}`;
const JUNK = createHash('sha256').update('junk').digest('hex').toUpperCase();

type Chain = Exclude<keyof Keys, 'dir'>;

/**
 * A row: `nextHop` MX → `server` (through `alias`, a CNAME, when given), `server` A its address,
 * `tlsa` at `_port._tcp.<tlsaAt>` (default: the server's name); the server sends `chain`.
 */
function row(
  id: string,
  what: string,
  nextHop: string,
  server: string,
  chain: Chain,
  tlsa: (k: Keys) => string[],
  o: Extra = {},
): DaneCase {
  const mxTarget = o.alias ?? server;
  return {
    id,
    what,
    nextHop,
    server,
    chain: (k) => k[chain],
    bogusTlsa: o.bogusTlsa,
    ca: o.ca,
    dns: (k, addr, port) => [
      `${nextHop}. 60 IN MX 10 ${mxTarget}.`,
      ...(o.alias ? [`${o.alias}. 60 IN CNAME ${server}.`] : []),
      `${server}. 60 IN A ${addr}`,
      ...tlsa(k).map((t) => `_${port}._tcp.${o.tlsaAt ?? server}. 60 IN TLSA ${t}`),
    ],
  };
}
type Extra = { alias?: string; tlsaAt?: string; bogusTlsa?: boolean; ca?: boolean };

const ee = (k: Keys): string[] => [tlsaOf(k.ee.cert, 3, 1, 1)];
const ta = (k: Keys): string[] => [tlsaOf(k.ca.cert, 2, 0, 1)];
const wrong = (): string[] => [WRONG];
const none = (): string[] => [];

/**
 * In the order they run, against one ticketbooth per level: a row may meet what an earlier one
 * left behind (a session to resume), as on the shared DANE-TA host. Its leaf names only the next
 * hop sharea.cf.test, so shareb.cf.test must never be delivered to.
 */
export const CASES: DaneCase[] = [
  row('ee', 'DANE-EE 3 1 1 matches the leaf', 'ee.cf.test', 'h-ee.cf.test', 'ee', ee),
  row('ee-wrong', 'DANE-EE 3 1 1 of another key', 'eew.cf.test', 'h-eew.cf.test', 'ee', wrong),
  row('no-tlsa', 'secure MX and host, no TLSA', 'nt.cf.test', 'h-nt.cf.test', 'ee', none),
  row('no-tlsa-again', 'the same, a session to resume', 'nt.cf.test', 'h-nt.cf.test', 'ee', none),
  row('no-tlsa-ca', 'no TLSA, chain to a CA trusted locally', 'ntc.cf.test', 'h-ta6.cf.test', 'taChain', none, { ca: true }),
  row('unusable-only', 'only unusable records (1 1 1, 0 0 1)', 'uo.cf.test', 'h-uo.cf.test', 'ee', (k) => [
    tlsaOf(k.ee.cert, 1, 1, 1),
    `0 0 1 ${JUNK}`,
  ]),
  row('unsigned', 'unsigned zone: MX and host insecure', 'u.pl.test', 'h-u.pl.test', 'ee', none),
  row('bogus-tlsa', 'TLSA RRset with a bad signature', 'bt.cf.test', 'h-bt.cf.test', 'ee', ee, { bogusTlsa: true }),
  row('ta-sent', 'DANE-TA 2 0 1, CA sent', 'tas.cf.test', 'h-ta1.cf.test', 'taChain', ta),
  row('ta-not-sent', 'DANE-TA 2 0 1, CA not sent', 'tan.cf.test', 'h-ta2.cf.test', 'taLeaf', ta),
  row('ta-not-sent-ca', 'DANE-TA 2 0 1, CA not sent but trusted locally', 'tanc.cf.test', 'h-ta5.cf.test', 'taLeaf', ta, { ca: true }),
  row('ta-200-dns', 'DANE-TA 2 0 0, CA only in DNS', 'ta0.cf.test', 'h-ta3.cf.test', 'taLeaf', (k) => [tlsaOf(k.ca.cert, 2, 0, 0)]),
  row('ta-210-dns', 'DANE-TA 2 1 0, CA key only in DNS', 'ta1.cf.test', 'h-ta4.cf.test', 'taLeaf', (k) => [tlsaOf(k.ca.cert, 2, 1, 0)]),
  row('ta-expired', 'DANE-TA 2 0 1, leaf expired', 'tax.cf.test', 'h-tax.cf.test', 'taExpired', ta),
  row('ta-misnamed', 'DANE-TA 2 0 1, leaf names another host', 'tam.cf.test', 'h-tam.cf.test', 'taMisnamed', ta),
  row('ee-expired', 'DANE-EE 3 1 1, leaf expired', 'eex.cf.test', 'h-eex.cf.test', 'eeExpired', (k) => [tlsaOf(k.eeExpired.cert, 3, 1, 1)]),
  row('ee-misnamed', 'DANE-EE 3 1 1, leaf names another host', 'eem.cf.test', 'h-eem.cf.test', 'eeMisnamed', (k) => [
    tlsaOf(k.eeMisnamed.cert, 3, 1, 1),
  ]),
  row('unusable-beside', 'unusable 0 0 1, 1 1 1 beside a matching 3 1 1', 'ub.cf.test', 'h-ub.cf.test', 'ee', (k) => [
    `0 0 1 ${JUNK}`,
    `1 1 1 ${JUNK}`,
    ...ee(k),
  ]),
  row('unknown-beside', 'unknown 4 1 1, 3 2 1, 3 1 3 beside a matching 3 1 1', 'uk.cf.test', 'h-uk.cf.test', 'ee', (k) => [
    `4 1 1 ${JUNK}`,
    `3 2 1 ${JUNK}`,
    `3 1 3 ${JUNK}`,
    ...ee(k),
  ]),
  row('unusable-wrong', 'a matching but unusable 1 1 1 beside a wrong 3 1 1', 'uw.cf.test', 'h-uw.cf.test', 'ee', (k) => [
    tlsaOf(k.ee.cert, 1, 1, 1),
    WRONG,
  ]),
  row(
    'share-b',
    'DANE-TA host shared by two next hops: the one its leaf does not name',
    'shareb.cf.test',
    'h-share.cf.test',
    'taShared',
    ta,
  ),
  row('share-a', 'the same host: the next hop its leaf names', 'sharea.cf.test', 'h-share.cf.test', 'taShared', ta),
  row('share-b-after-a', 'the same host: the other next hop again, after sharea', 'shareb.cf.test', 'h-share.cf.test', 'taShared', ta),
  row('cname-match', 'MX host a CNAME, matching 3 1 1 at the target', 'cn.cf.test', 'h-cn.cf.test', 'ee', ee, { alias: 'al-cn.cf.test' }),
  row('cname-wrong', 'MX host a CNAME, wrong 3 1 1 at the target', 'cnw.cf.test', 'h-cnw.cf.test', 'ee', wrong, {
    alias: 'al-cnw.cf.test',
  }),
  row('alias-unsigned-match', 'signed alias, unsigned target, matching 3 1 1 at the alias', 'au.cf.test', 'h-au.pl.test', 'ee', ee, {
    alias: 'al-au.cf.test',
    tlsaAt: 'al-au.cf.test',
  }),
  row('alias-unsigned-wrong', 'signed alias, unsigned target, wrong 3 1 1 at the alias', 'auw.cf.test', 'h-auw.pl.test', 'ee', wrong, {
    alias: 'al-auw.cf.test',
    tlsaAt: 'al-auw.cf.test',
  }),
  row('insecure-mx-match', 'unsigned MX RRset to a signed host, matching 3 1 1', 'im.pl.test', 'h-im.cf.test', 'ee', ee),
  row('insecure-mx-wrong', 'unsigned MX RRset to a signed host, wrong 3 1 1', 'imw.pl.test', 'h-imw.cf.test', 'ee', wrong),
];
