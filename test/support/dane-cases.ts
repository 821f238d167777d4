import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertPair } from './certs.js';

/**
 * The DANE conformance cases (issue 22): each a next hop, its MX host's DNS (in the signed
 * `cf.test` or the unsigned `pl.test`) and the chain the host sends. Postfix's verdict is not
 * written here: the test asks posttls-finger for it, live.
 */

/** The zones of the test world: `cf.test` signed and anchored, `pl.test` unsigned. */
export type Zone = 'cf.test' | 'pl.test';

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
}

/** One private CA and the leaves the cases send. */
export interface Keys {
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

const TA_HOSTS = ['h-ta1.cf.test', 'h-ta2.cf.test', 'h-ta3.cf.test', 'h-ta4.cf.test'];

export function makeKeys(): Keys {
  const dir = mkdtempSync(join(tmpdir(), 'tb-conform-'));
  const make = (name: string, names: string[], days: number, ca?: CertPair): CertPair => openssl(dir, name, names, days, ca);
  const ca = make('ca', ['conformance CA'], 7);
  const taLeaf = make('ta', TA_HOSTS, 7, ca);
  const sent = (p: CertPair): CertPair => chainWith(p, ca);
  return {
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
 * A P-256 key and certificate for `names` made by the openssl CLI: a CA when `names` is one
 * word, else a leaf, self-signed or issued by `ca`. `days` -1 gives one that has already expired.
 */
function openssl(dir: string, name: string, names: string[], days: number, ca?: CertPair): CertPair {
  const keyFile = join(dir, `${name}-key.pem`);
  const certFile = join(dir, `${name}.pem`);
  const run = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  const isCa = names[0].includes(' ');
  const ext = isCa
    ? ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign']
    : [`subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`, 'basicConstraints=CA:FALSE'];
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-subj', `/CN=${names[0]}`];
  // x509 -req for every certificate: `req -x509` refuses a negative -days.
  const csr = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, ext.join('\n') + '\n');
  run(['req', '-new', ...newKey, '-out', csr]);
  const signer = ca ? ['-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial'] : ['-signkey', keyFile];
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

/** TLSA data of a certificate (`usage selector matching hex`), as a zone file writes it. */
export function tlsaOf(pem: string, usage: number, selector: number, matching: number): string {
  const cert = new X509Certificate(pem);
  const item = selector === 0 ? cert.raw : cert.publicKey.export({ type: 'spki', format: 'der' });
  const data =
    matching === 0
      ? item
      : createHash(matching === 1 ? 'sha256' : 'sha512')
          .update(item)
          .digest();
  return `${usage} ${selector} ${matching} ${data.toString('hex').toUpperCase()}`;
}

const WRONG = `3 1 1 ${createHash('sha256').update('no such key').digest('hex').toUpperCase()}`;
const JUNK = createHash('sha256').update('junk').digest('hex').toUpperCase();

/** `next` MX → `host` (through `alias` CNAME when given), `host` A `addr`, and TLSA records at `tlsaAt` (default `host`). */
function mx(next: string, host: string, addr: string, port: number, tlsa: string[], o: { alias?: string; tlsaAt?: string } = {}): string[] {
  const at = o.tlsaAt ?? host;
  return [
    `${next}. 60 IN MX 10 ${o.alias ?? host}.`,
    ...(o.alias ? [`${o.alias}. 60 IN CNAME ${host}.`] : []),
    `${host}. 60 IN A ${addr}`,
    ...tlsa.map((t) => `_${port}._tcp.${at}. 60 IN TLSA ${t}`),
  ];
}

const ee = (k: Keys): string => tlsaOf(k.ee.cert, 3, 1, 1);
const ta = (k: Keys): string => tlsaOf(k.ca.cert, 2, 0, 1);

/** In the order they run: the shared DANE-TA host's rows depend on what ran before them (a session to resume). */
export const CASES: DaneCase[] = [
  {
    id: 'ee',
    what: 'DANE-EE 3 1 1 matches the leaf',
    nextHop: 'ee.cf.test',
    server: 'h-ee.cf.test',
    chain: (k) => k.ee,
    dns: (k, a, p) => mx('ee.cf.test', 'h-ee.cf.test', a, p, [ee(k)]),
  },
  {
    id: 'ee-wrong',
    what: 'DANE-EE 3 1 1 of another key',
    nextHop: 'eew.cf.test',
    server: 'h-eew.cf.test',
    chain: (k) => k.ee,
    dns: (_, a, p) => mx('eew.cf.test', 'h-eew.cf.test', a, p, [WRONG]),
  },
  {
    id: 'no-tlsa',
    what: 'secure MX and host, no TLSA',
    nextHop: 'nt.cf.test',
    server: 'h-nt.cf.test',
    chain: (k) => k.ee,
    dns: (_, a, p) => mx('nt.cf.test', 'h-nt.cf.test', a, p, []),
  },
  {
    id: 'unusable-only',
    what: 'only unusable records (1 1 1, 0 0 1)',
    nextHop: 'uo.cf.test',
    server: 'h-uo.cf.test',
    chain: (k) => k.ee,
    dns: (k, a, p) => mx('uo.cf.test', 'h-uo.cf.test', a, p, [tlsaOf(k.ee.cert, 1, 1, 1), `0 0 1 ${JUNK}`]),
  },
  {
    id: 'unsigned',
    what: 'unsigned zone: MX and host insecure',
    nextHop: 'u.pl.test',
    server: 'h-u.pl.test',
    chain: (k) => k.ee,
    dns: (_, a, p) => mx('u.pl.test', 'h-u.pl.test', a, p, []),
  },
  {
    id: 'bogus-tlsa',
    what: 'TLSA RRset with a bad signature',
    nextHop: 'bt.cf.test',
    server: 'h-bt.cf.test',
    chain: (k) => k.ee,
    dns: (k, a, p) => mx('bt.cf.test', 'h-bt.cf.test', a, p, [ee(k)]),
    bogusTlsa: true,
  },
  {
    id: 'ta-sent',
    what: 'DANE-TA 2 0 1, CA sent',
    nextHop: 'tas.cf.test',
    server: 'h-ta1.cf.test',
    chain: (k) => k.taChain,
    dns: (k, a, p) => mx('tas.cf.test', 'h-ta1.cf.test', a, p, [ta(k)]),
  },
  {
    id: 'ta-not-sent',
    what: 'DANE-TA 2 0 1, CA not sent',
    nextHop: 'tan.cf.test',
    server: 'h-ta2.cf.test',
    chain: (k) => k.taLeaf,
    dns: (k, a, p) => mx('tan.cf.test', 'h-ta2.cf.test', a, p, [ta(k)]),
  },
  {
    id: 'ta-200-dns',
    what: 'DANE-TA 2 0 0, CA only in DNS',
    nextHop: 'ta0.cf.test',
    server: 'h-ta3.cf.test',
    chain: (k) => k.taLeaf,
    dns: (k, a, p) => mx('ta0.cf.test', 'h-ta3.cf.test', a, p, [tlsaOf(k.ca.cert, 2, 0, 0)]),
  },
  {
    id: 'ta-210-dns',
    what: 'DANE-TA 2 1 0, CA key only in DNS',
    nextHop: 'ta1.cf.test',
    server: 'h-ta4.cf.test',
    chain: (k) => k.taLeaf,
    dns: (k, a, p) => mx('ta1.cf.test', 'h-ta4.cf.test', a, p, [tlsaOf(k.ca.cert, 2, 1, 0)]),
  },
  {
    id: 'ta-expired',
    what: 'DANE-TA 2 0 1, leaf expired',
    nextHop: 'tax.cf.test',
    server: 'h-tax.cf.test',
    chain: (k) => k.taExpired,
    dns: (k, a, p) => mx('tax.cf.test', 'h-tax.cf.test', a, p, [ta(k)]),
  },
  {
    id: 'ta-misnamed',
    what: 'DANE-TA 2 0 1, leaf names another host',
    nextHop: 'tam.cf.test',
    server: 'h-tam.cf.test',
    chain: (k) => k.taMisnamed,
    dns: (k, a, p) => mx('tam.cf.test', 'h-tam.cf.test', a, p, [ta(k)]),
  },
  {
    id: 'ee-expired',
    what: 'DANE-EE 3 1 1, leaf expired',
    nextHop: 'eex.cf.test',
    server: 'h-eex.cf.test',
    chain: (k) => k.eeExpired,
    dns: (k, a, p) => mx('eex.cf.test', 'h-eex.cf.test', a, p, [tlsaOf(k.eeExpired.cert, 3, 1, 1)]),
  },
  {
    id: 'ee-misnamed',
    what: 'DANE-EE 3 1 1, leaf names another host',
    nextHop: 'eem.cf.test',
    server: 'h-eem.cf.test',
    chain: (k) => k.eeMisnamed,
    dns: (k, a, p) => mx('eem.cf.test', 'h-eem.cf.test', a, p, [tlsaOf(k.eeMisnamed.cert, 3, 1, 1)]),
  },
  {
    id: 'unusable-beside',
    what: 'unusable 0 0 1 and 1 1 1 beside a matching 3 1 1',
    nextHop: 'ub.cf.test',
    server: 'h-ub.cf.test',
    chain: (k) => k.ee,
    dns: (k, a, p) => mx('ub.cf.test', 'h-ub.cf.test', a, p, [`0 0 1 ${JUNK}`, `1 1 1 ${JUNK}`, ee(k)]),
  },
  {
    id: 'unknown-beside',
    what: 'unknown 4 1 1, 3 2 1, 3 1 3 beside a matching 3 1 1',
    nextHop: 'uk.cf.test',
    server: 'h-uk.cf.test',
    chain: (k) => k.ee,
    dns: (k, a, p) => mx('uk.cf.test', 'h-uk.cf.test', a, p, [`4 1 1 ${JUNK}`, `3 2 1 ${JUNK}`, `3 1 3 ${JUNK}`, ee(k)]),
  },
  {
    id: 'unusable-wrong',
    what: 'a matching but unusable 1 1 1 beside a wrong 3 1 1',
    nextHop: 'uw.cf.test',
    server: 'h-uw.cf.test',
    chain: (k) => k.ee,
    dns: (k, a, p) => mx('uw.cf.test', 'h-uw.cf.test', a, p, [tlsaOf(k.ee.cert, 1, 1, 1), WRONG]),
  },
  ...(['b', 'a', 'b'] as const).map((n, i): DaneCase => ({
    id: `share-${n}${i === 2 ? '-after-a' : ''}`,
    what: `DANE-TA host shared by two next hops, leaf names share${'a'}.cf.test only: next hop share${n}`,
    nextHop: `share${n}.cf.test`,
    server: 'h-share.cf.test',
    chain: (k) => k.taShared,
    dns: (k, a, p) => [...mx('sharea.cf.test', 'h-share.cf.test', a, p, [ta(k)]), 'shareb.cf.test. 60 IN MX 10 h-share.cf.test.'],
  })),
  {
    id: 'cname-match',
    what: 'MX host a CNAME, matching 3 1 1 at the target',
    nextHop: 'cn.cf.test',
    server: 'h-cn.cf.test',
    chain: (k) => k.ee,
    dns: (k, a, p) => mx('cn.cf.test', 'h-cn.cf.test', a, p, [ee(k)], { alias: 'al-cn.cf.test' }),
  },
  {
    id: 'cname-wrong',
    what: 'MX host a CNAME, wrong 3 1 1 at the target',
    nextHop: 'cnw.cf.test',
    server: 'h-cnw.cf.test',
    chain: (k) => k.ee,
    dns: (_, a, p) => mx('cnw.cf.test', 'h-cnw.cf.test', a, p, [WRONG], { alias: 'al-cnw.cf.test' }),
  },
  {
    id: 'alias-unsigned-match',
    what: 'signed alias to an unsigned host, matching 3 1 1 at the alias',
    nextHop: 'au.cf.test',
    server: 'h-au.pl.test',
    chain: (k) => k.ee,
    dns: (k, a, p) => mx('au.cf.test', 'h-au.pl.test', a, p, [ee(k)], { alias: 'al-au.cf.test', tlsaAt: 'al-au.cf.test' }),
  },
  {
    id: 'alias-unsigned-wrong',
    what: 'signed alias to an unsigned host, wrong 3 1 1 at the alias',
    nextHop: 'auw.cf.test',
    server: 'h-auw.pl.test',
    chain: (k) => k.ee,
    dns: (_, a, p) => mx('auw.cf.test', 'h-auw.pl.test', a, p, [WRONG], { alias: 'al-auw.cf.test', tlsaAt: 'al-auw.cf.test' }),
  },
  {
    id: 'insecure-mx-match',
    what: 'unsigned MX RRset to a signed host, matching 3 1 1',
    nextHop: 'im.pl.test',
    server: 'h-im.cf.test',
    chain: (k) => k.ee,
    dns: (k, a, p) => mx('im.pl.test', 'h-im.cf.test', a, p, [ee(k)]),
  },
  {
    id: 'insecure-mx-wrong',
    what: 'unsigned MX RRset to a signed host, wrong 3 1 1',
    nextHop: 'imw.pl.test',
    server: 'h-imw.cf.test',
    chain: (k) => k.ee,
    dns: (_, a, p) => mx('imw.pl.test', 'h-imw.cf.test', a, p, [WRONG]),
  },
];
