import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { MemoryTicketStore } from '../../src/resumption/memory-store.js';
import { unwrapSession } from '../../src/resumption/session-envelope.js';
import { ResumptionCache } from '../../src/resumption/policy.js';
import { TRUST_FIELDS, type TlsTarget } from '../../src/upstream/tls-target.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { getTls, parseVerdict, startSServer, type SServer } from '../support/servers.js';
import { Dialer } from '../support/dial.js';

/**
 * Node skips hostname and CA checks on a resumed session. So a session made under one trust
 * decision must never be offered under another: first shown to be a real danger, then shown not
 * to happen through ticketbooth.
 */

describe('trust key against a real server', { skip: missing('openssl') }, () => {
  let caX: CertPair; // the server's own certificate: its trust anchor
  let caY: CertPair; // an unrelated CA
  let client: CertPair;
  let tls13: SServer;
  let tls12: SServer;
  before(async () => {
    caX = makeCert(['localhost']);
    caY = makeCert(['localhost']);
    client = makeCert(['client.test']);
    tls13 = await startSServer('tls13', caX);
    tls12 = await startSServer('tls12-tickets', caX);
  });
  after(async () => {
    await tls13?.stop();
    await tls12?.stop();
  });

  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    test(`${version}: without the key split a session would resume under another CA (and, before Node 22, another name), with no error`, async () => {
      const s = version === 'TLSv1.3' ? tls13 : tls12;
      const first = await getTls({ host: s.host, port: s.port, servername: 'localhost', ca: caX.cert });
      assert.equal(parseVerdict(first.page).verdict, 'New');
      const session = first.sessions[0];
      // A different CA: a full handshake fails...
      await assert.rejects(getTls({ host: s.host, port: s.port, servername: 'localhost', ca: caY.cert }));
      // ...yet with the old session, Node resumes and never asks: this is what the key prevents.
      const unsafe = await getTls({ host: s.host, port: s.port, servername: 'localhost', ca: caY.cert, session });
      assert.equal(unsafe.resumed, true);
      assert.equal(parseVerdict(unsafe.page).verdict, 'Reused');
      // Another name: Node 22+ binds the session to its name in an envelope and will not resume it
      // there (so the full handshake fails verification); Node 20's bare session resumes anyway.
      const otherName = getTls({ host: s.host, port: s.port, servername: 'evil.example', ca: caY.cert, session });
      if (unwrapSession(session).format === 'node-envelope-1') {
        await assert.rejects(otherName);
      } else {
        assert.equal(parseVerdict((await otherName).page).verdict, 'Reused');
      }
    });

    test(`${version}: through ticketbooth a session is never offered under another trust decision`, async () => {
      const s = version === 'TLSv1.3' ? tls13 : tls12;
      const cache = new ResumptionCache(new MemoryTicketStore(100), { ticketsPerDestination: 8, maxAgeSeconds: 3600, reuse: 'adaptive' });
      const dialer = new Dialer(cache, 'trust');
      const dial = (t: TlsTarget) => dialer.get(t);
      const trusted: TlsTarget = { host: s.host, port: s.port, servername: 'localhost', ca: caX.cert, verify: 'name' };

      const made = await dial(trusted);
      assert.equal(made.verdict, 'New');
      assert.ok(made.event.ticketsReceived >= 1);

      // Each of these is a different trust decision about the same server.
      const others: Array<[string, TlsTarget, 'fails' | 'full']> = [
        ['another servername', { ...trusted, servername: 'evil.example' }, 'fails'],
        ['another CA', { ...trusted, ca: caY.cert }, 'fails'],
        ['verification off', { ...trusted, verify: 'none' }, 'full'],
        ['chain-only verification', { ...trusted, verify: 'chain' }, 'full'],
        ['other version bounds', { ...trusted, minVersion: version, maxVersion: version }, 'full'],
        ['a client certificate', { ...trusted, cert: client.cert, key: client.key }, 'full'],
        ['another cipher list', { ...trusted, ciphers: 'HIGH:!aNULL' }, 'full'],
        ['other key-exchange groups (a TLS 1.2 session would keep its old one)', { ...trusted, groups: 'P-256:X25519' }, 'full'],
        ['another verify name', { ...trusted, verifyName: 'evil.example' }, 'fails'],
        ['names under the verify name too (dot-nexthop)', { ...trusted, verifyMatch: 'dot-nexthop' }, 'full'],
        ['another EHLO name (another server behind a balancer)', { ...trusted, ehloName: 'mx1.example' }, 'full'],
        [
          'an MTA-STS policy in testing',
          { ...trusted, sts: { domain: 'example.org', id: '1', mode: 'testing', mxMatch: true, mxHost: 'localhost' } },
          'full',
        ],
        ['DANE-EE instead of a CA', { ...trusted, verify: 'none', dane: daneEe(caX.cert) }, 'full'],
      ];
      // Every field of the key is tried here but host and port (another address is another server).
      const tried = new Set(others.flatMap(([, t]) => changedFields(trusted, t)));
      const untried = Object.keys(TRUST_FIELDS).filter((f) => TRUST_FIELDS[f as keyof TlsTarget].trust === 'key' && !tried.has(f));
      assert.deepEqual(untried, ['host', 'port']);
      for (const [what, target, expect] of others) {
        const r = await dial(target);
        assert.equal(r.event.offered, 'none', `${what}: nothing offered`);
        assert.equal(r.event.resumed, false, what);
        if (expect === 'fails') {
          assert.ok(r.error, `${what}: the connection fails verification, as a full handshake must`);
          assert.ok(r.event.error, `${what}: the audit line carries the error`);
        } else {
          assert.equal(r.verdict, 'New', `${what}: the server saw a full handshake`);
        }
      }

      // The original decision still resumes: the split did not lose its sessions.
      const back = await dial(trusted);
      assert.notEqual(back.event.offered, 'none');
      assert.equal(back.verdict, 'Reused');
      await dialer.close();
    });
  }
});

/** The fields in which `b` differs from `a`. */
function changedFields(a: TlsTarget, b: TlsTarget): string[] {
  const fields = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof TlsTarget>;
  return [...fields].filter((f) => JSON.stringify(a[f]) !== JSON.stringify(b[f]));
}

/** A DANE decision whose one DANE-EE record is the server's full certificate (3 0 0). */
function daneEe(certPem: string): NonNullable<TlsTarget['dane']> {
  const data = Buffer.from(new X509Certificate(certPem).raw);
  return {
    level: 'dane',
    effective: 'dane',
    mxDnssec: 'secure',
    tlsa: 'usable',
    records: [{ usage: 3, selector: 0, matchingType: 0, data }],
    digest: 'ee',
    changed: false,
    baseDomain: 'localhost',
    until: Number.POSITIVE_INFINITY,
    names: ['localhost', 'example.org'],
    mxHost: 'localhost',
  };
}
