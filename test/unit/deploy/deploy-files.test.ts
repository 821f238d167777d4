import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { formatFinding } from '../../../scripts/deploy-check/findings.js';
import { validateDeploy } from '../../../scripts/validate-deploy.js';

/**
 * scripts/validate-deploy.ts (run by .ci/run): the real deployment files pass; a copy with one
 * mistake of each kind fails, and each finding names the file and the path in it. The programs
 * (systemd-analyze, postconf) are left out here: this is the unit layer.
 */

let copy: string;

/** Replaces `from` by `to` in `file` of the copy; the test fails if `from` is not there. */
function mutate(file: string, from: string, to: string): void {
  const path = join(copy, file);
  const text = readFileSync(path, 'utf8');
  assert.ok(text.includes(from), `${file} no longer contains ${JSON.stringify(from)}: update this test`);
  writeFileSync(path, text.replace(from, to));
}

before(() => {
  copy = mkdtempSync(join(tmpdir(), 'deploy-files-'));
  mkdirSync(join(copy, 'config'));
  cpSync('config/container.yaml', join(copy, 'config/container.yaml'));
  cpSync('deploy', join(copy, 'deploy'), { recursive: true });
});

after(() => rmSync(copy, { recursive: true, force: true }));

test('the deployment files as committed: no finding', async () => {
  const r = await validateDeploy('.', { programs: false });
  assert.deepEqual(r.findings.map(formatFinding), []);
  for (const file of [
    'config/container.yaml',
    'deploy/compose.yaml',
    'deploy/compose/ticketbooth.yaml',
    'deploy/kubernetes/configmap.yaml',
    'deploy/kubernetes/deployment.yaml',
    'deploy/kubernetes/service.yaml',
    'deploy/kubernetes/pdb.yaml',
    'deploy/kubernetes/redis.yaml',
  ])
    assert.ok(
      r.checked.some((c) => c.startsWith(`${file}:`)),
      `${file} was checked`,
    );
});

test('a broken copy: each mistake is found, with its file and path', async () => {
  const k8s = 'deploy/kubernetes';
  mutate(`${k8s}/deployment.yaml`, 'readinessProbe:', 'readinesProbe:'); // a misspelt field
  mutate(`${k8s}/deployment.yaml`, 'replicas: 2', 'replicas: two'); // a wrong type
  mutate(`${k8s}/deployment.yaml`, 'terminationGracePeriodSeconds: 45', 'terminationGracePeriodSeconds: 30'); // SIGKILL before the drain ends
  mutate(`${k8s}/pdb.yaml`, 'minAvailable: 1', 'minAvailable: 1\n  maxUnavailble: 1');
  mutate(`${k8s}/service.yaml`, 'targetPort: smtp', 'targetPort: smtps'); // a port no container has
  mutate('deploy/compose.yaml', 'stop_grace_period: 40s', 'stop_grace_period: 40s\n    restart_policy: always');
  mutate('deploy/compose/ticketbooth.yaml', 'listen: 0.0.0.0:9464', 'listen: 0.0.0.0:99999');
  mutate('config/container.yaml', 'route: { mode: mx }', 'route: { mode: mx, relayhost: smtp.example.net }');

  const r = await validateDeploy(copy, { programs: false });
  const lines = r.findings.map(formatFinding);
  const expect = (pattern: RegExp): void =>
    assert.ok(
      lines.some((l) => pattern.test(l)),
      `no finding matches ${String(pattern)} in:\n${lines.join('\n')}`,
    );
  expect(/^deploy\/kubernetes\/deployment\.yaml: spec\.template\.spec\.containers\[0\]\.readinesProbe: unknown field/);
  expect(/^deploy\/kubernetes\/deployment\.yaml: spec\.replicas: must be integer/);
  expect(/^deploy\/kubernetes\/deployment\.yaml: spec\.template\.spec\.terminationGracePeriodSeconds: 30 s is not more than/);
  expect(/^deploy\/kubernetes\/pdb\.yaml: spec\.maxUnavailble: unknown field/);
  expect(/^deploy\/kubernetes\/service\.yaml: spec\.ports\[0\]\.targetPort: no container port is named smtps/);
  expect(/^deploy\/compose\.yaml: services\.ticketbooth\.restart_policy: unknown key/);
  expect(/^config\/container\.yaml: listeners\[0\]\.route: Unrecognized key: "relayhost"/);

  // A file that fails its schema is not checked further, and a config that does not parse leaves
  // out the checks that need it: these mistakes are found once those are mended.
  mutate('deploy/compose.yaml', '\n    restart_policy: always', '');
  mutate(`${k8s}/configmap.yaml`, 'tls: { level: may }', 'tls: { level: maybe }'); // ticketbooth's own schema
  const again = (await validateDeploy(copy, { programs: false })).findings.map(formatFinding);
  for (const pattern of [
    /^deploy\/compose\/ticketbooth\.yaml: admin\.listen: port must be at most 65535/,
    /^deploy\/kubernetes\/configmap\.yaml: data\."ticketbooth\.yaml": listeners\[0\]\.tls\.level: Invalid option/,
  ])
    assert.ok(
      again.some((l) => pattern.test(l)),
      `no finding matches ${String(pattern)} in:\n${again.join('\n')}`,
    );
});
