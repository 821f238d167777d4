import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertPair {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

/**
 * A self-signed ECDSA P-256 certificate for the given names, made by the openssl CLI (present on
 * every Debian machine; .ci/run installs it). Each call makes an unrelated CA: two calls give two
 * trust anchors, which the trust-key tests rely on.
 */
export function makeCert(names: string[] = ['localhost'], dir = mkdtempSync(join(tmpdir(), 'tb-cert-'))): CertPair {
  return selfSigned(dir, 'key.pem', 'cert.pem', `/CN=${names[0]}`, [`subjectAltName=${sanOf(names)}`]);
}

function sanOf(names: string[]): string {
  return names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
}

/** `openssl req -x509`: a new P-256 key and a certificate for it, valid 7 days, with these extensions. */
function selfSigned(dir: string, keyName: string, certName: string, subject: string, extensions: string[]): CertPair {
  const keyFile = join(dir, keyName);
  const certFile = join(dir, certName);
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile],
      ...['-days', '7', '-subj', subject, ...extensions.flatMap((e) => ['-addext', e])],
    ],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
}

export interface IssuedPair extends CertPair {
  /** The issuing CA's certificate (PEM), which signed this one. */
  ca: string;
  /** This certificate then the CA's, as a server sends its chain (what `certFile` holds too). */
  chain: string;
}

/**
 * A leaf for `names` issued by a new CA (both ECDSA P-256, made by the openssl CLI): `certFile`
 * holds the leaf and the CA certificate, so a server sends the anchor a DANE-TA record names.
 */
export function makeIssuedCert(names: string[], dir = mkdtempSync(join(tmpdir(), 'tb-chain-'))): IssuedPair {
  return issueCert(makeCa(dir), names, dir);
}

/** A new CA (its certificate is `cert`/`certFile`), to issue several leaves from with `issueCert`. */
export function makeCa(dir = mkdtempSync(join(tmpdir(), 'tb-ca-'))): CertPair {
  return makeCaCert(dir);
}

/** A leaf for `names` issued by `ca`, in `dir` (one leaf per dir: `leaf-key.pem`, `leaf.pem`, `chain.pem`). */
export function issueCert(ca: CertPair, names: string[], dir = mkdtempSync(join(tmpdir(), 'tb-leaf-'))): IssuedPair {
  const keyFile = join(dir, 'leaf-key.pem');
  const csr = join(dir, 'leaf.csr');
  const leafFile = join(dir, 'leaf.pem');
  const ext = join(dir, 'leaf.ext');
  writeFileSync(ext, `subjectAltName=${sanOf(names)}\nbasicConstraints=CA:FALSE\n`);
  const openssl = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    csr,
    '-subj',
    `/CN=${names[0]}`,
  ]);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-CAcreateserial',
    '-days',
    '7',
    '-extfile',
    ext,
    '-out',
    leafFile,
  ]);
  const leaf = readFileSync(leafFile, 'utf8');
  const chain = leaf + ca.cert;
  const certFile = join(dir, 'chain.pem');
  writeFileSync(certFile, chain);
  return { cert: chain, key: readFileSync(keyFile, 'utf8'), certFile, keyFile, ca: ca.cert, chain };
}

function makeCaCert(dir: string): CertPair {
  return selfSigned(dir, 'ca-key.pem', 'ca.pem', '/CN=ticketbooth test CA', [
    'basicConstraints=critical,CA:TRUE',
    'keyUsage=critical,keyCertSign',
  ]);
}
