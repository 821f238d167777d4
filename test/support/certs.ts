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
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '7',
      '-subj',
      `/CN=${names[0]}`,
      '-addext',
      `subjectAltName=${san}`,
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
  const ca = makeCaCert(dir);
  const keyFile = join(dir, 'leaf-key.pem');
  const csr = join(dir, 'leaf.csr');
  const leafFile = join(dir, 'leaf.pem');
  const ext = join(dir, 'leaf.ext');
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  writeFileSync(ext, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\n`);
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
  const keyFile = join(dir, 'ca-key.pem');
  const certFile = join(dir, 'ca.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '7',
      '-subj',
      '/CN=ticketbooth test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
}
