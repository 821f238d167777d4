import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MtaStsPolicies, type PolicyKv } from '../../../src/mta-sts/policies.js';
import { mxMatches, parseStsPolicy, parseStsTxt } from '../../../src/mta-sts/policy.js';

const POLICY = 'version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.mail.example.com\r\nmax_age: 86400\r\n';

describe('MTA-STS text (RFC 8461 3.1, 3.2, 4.1)', () => {
  test('the TXT record: exactly one v=STSv1 with a valid id', () => {
    assert.deepEqual(parseStsTxt(['v=STSv1; id=20261128T01;']), { id: '20261128T01' });
    assert.deepEqual(parseStsTxt(['v=spf1 -all', 'v=STSv1;id=abc']), { id: 'abc' });
    assert.ok('error' in parseStsTxt([]));
    assert.ok('error' in parseStsTxt(['v=STSv1; id=a', 'v=STSv1; id=b']), 'two records: no policy');
    assert.ok('error' in parseStsTxt(['v=STSv1; id=has-dash']));
    assert.ok('error' in parseStsTxt(['v=STSv1; id=' + 'a'.repeat(33)]));
    assert.ok('error' in parseStsTxt(['v=STSv10; id=a']));
  });

  test('the policy file: strict fields, CRLF or LF, unknown keys ignored', () => {
    const p = parseStsPolicy(POLICY);
    assert.ok(!('error' in p));
    assert.deepEqual([p.mode, p.mx, p.maxAgeSeconds], ['enforce', ['mx1.example.com', '*.mail.example.com'], 86400]);
    assert.ok(!('error' in parseStsPolicy(POLICY.replaceAll('\r\n', '\n') + 'extension: x\n')));
    assert.ok(!('error' in parseStsPolicy('version: STSv1\nmode: none\nmax_age: 0\n')), 'mode none needs no mx');
    for (const bad of [
      POLICY.replace('STSv1', 'STSv2'),
      POLICY.replace('enforce', 'strict'),
      POLICY.replace('86400', '31557601'),
      POLICY.replace('86400', '-1'),
      POLICY.replace(/mx: .*\r\n/g, ''),
      POLICY + 'garbage line\r\n',
      POLICY.replace('mx1.example.com', 'mx1 example com'),
    ])
      assert.ok('error' in parseStsPolicy(bad), JSON.stringify(bad));
  });

  test('a leading *. matches exactly one label', () => {
    const mx = ['mx1.example.com', '*.mail.example.com'];
    assert.ok(mxMatches(mx, 'MX1.example.com.'));
    assert.ok(mxMatches(mx, 'a.mail.example.com'));
    assert.equal(mxMatches(mx, 'a.b.mail.example.com'), false, 'two labels');
    assert.equal(mxMatches(mx, 'mail.example.com'), false, 'no label');
    assert.equal(mxMatches(mx, 'mx2.example.com'), false);
  });
});

/** A KV in memory with the store's semantics (a value gone after its TTL). */
function kv(now: () => number): PolicyKv & { data: Map<string, { v: string; until: number }> } {
  const data = new Map<string, { v: string; until: number }>();
  return {
    data,
    get: async (k) => {
      const e = data.get(k);
      return e && e.until > now() ? e.v : undefined;
    },
    set: async (k, v, ttl) => void data.set(k, { v, until: now() + ttl }),
  };
}

describe('MTA-STS discovery and caching (RFC 8461 5)', () => {
  test('fetched once per id; a new id refetches; a failed fetch keeps the cached policy; without one, the failure is said', async () => {
    let t = 1_000_000;
    let txt: string[] | undefined = ['v=STSv1; id=one'];
    let serve: string | undefined = POLICY;
    let fetches = 0;
    const store = kv(() => t);
    const policies = new MtaStsPolicies({
      now: () => t,
      kv: store,
      txt: async () => (txt === undefined ? undefined : { records: txt, ttl: 60 }),
      fetch: async () => {
        fetches++;
        if (serve === undefined) return { failure: 'sts-policy-fetch-error', why: 'down' };
        const p = parseStsPolicy(serve);
        return 'error' in p ? { failure: 'sts-policy-invalid', why: p.error } : { policy: p };
      },
    });
    const first = await policies.policyFor('Example.com');
    assert.deepEqual([first.policy?.id, first.fetched, fetches], ['one', true, 1]);
    assert.equal((await policies.policyFor('example.com')).policy?.id, 'one');
    assert.equal(fetches, 1, 'same id: the cached policy');

    txt = ['v=STSv1; id=two'];
    serve = POLICY.replace('enforce', 'testing');
    const second = await policies.policyFor('example.com');
    assert.deepEqual([second.policy?.id, second.policy?.mode, fetches], ['two', 'testing', 2]);

    txt = ['v=STSv1; id=three'];
    serve = undefined;
    const down = await policies.policyFor('example.com');
    assert.deepEqual([down.policy?.id, down.failure], ['two', 'sts-policy-fetch-error'], 'the cached policy still applies');
    txt = undefined;
    const unanswered = await policies.policyFor('example.com');
    assert.deepEqual(
      [unanswered.policy?.id, unanswered.failure],
      ['two', 'sts-policy-fetch-error'],
      'no TXT answer: the cached policy applies, the failure is said',
    );
    txt = ['v=STSv1; id=two'];
    t += 60_000; // the failed lookup is no longer remembered

    t += 86_400_000 + 1; // max_age over
    txt = ['v=STSv1; id=three'];
    const none = await policies.policyFor('example.com');
    assert.deepEqual([none.policy, none.failure], [undefined, 'sts-policy-fetch-error']);
    serve = 'version: STSv1\nmode: enforce\n';
    assert.equal((await policies.policyFor('example.com')).failure, 'sts-policy-invalid');
  });

  test('a TXT lookup that fails is a discovery failure, not "no policy", and is remembered for a minute, not asked per message', async () => {
    let t = 1_000_000;
    let txt: string[] | undefined;
    let lookups = 0;
    const policies = new MtaStsPolicies({
      now: () => t,
      kv: kv(() => t),
      txt: async () => {
        lookups++;
        return txt === undefined ? undefined : { records: txt, ttl: 60 };
      },
      fetch: async () => {
        const p = parseStsPolicy(POLICY);
        return 'error' in p ? { failure: 'sts-policy-invalid', why: p.error } : { policy: p };
      },
    });
    const first = await policies.policyFor('blocked.example');
    assert.deepEqual([first.policy, first.failure], [undefined, 'sts-policy-fetch-error']);
    t += 59_999;
    assert.equal((await policies.policyFor('blocked.example')).failure, 'sts-policy-fetch-error');
    assert.equal(lookups, 1, 'the second message did not wait for the lookup again');
    t += 1;
    txt = ['v=STSv1; id=back'];
    const back = await policies.policyFor('blocked.example');
    assert.deepEqual([back.policy?.id, back.failure, lookups], ['back', undefined, 2]);
    txt = [];
    assert.deepEqual(await policies.policyFor('none.example'), {}, 'no record at all: no policy, no failure');
  });
});
