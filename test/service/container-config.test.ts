import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { missing } from '../support/interop.js';
import { createNetns, firstLine, notRoot, type Netns } from '../support/netns.js';
import { startProcess, type RunningProcess } from '../support/process.js';

/**
 * config/container.yaml (the image's config) in a network namespace of its own, as in a container:
 * the smarthost answers on the namespace's non-loopback address, refuses a client outside the allow
 * list, /readyz answers from outside (a kubelet's probe), and `ticketbooth health --config` (the
 * HEALTHCHECK) exits 0 inside it. Without an admin section, `health` checks that the listeners are
 * bound instead: 0 while they are, 1 once the service stopped. scripts/container-smoke.sh does the
 * same with the built CLI as uid 1000 on a read-only root (in .ci/run).
 */

const exec = promisify(execFile);
const CLI = ['--import', 'tsx', 'src/cli.ts'];

describe('the container config in a network namespace', { skip: missing('ip') ?? notRoot() }, () => {
  let ns: Netns;
  let work: string;

  before(() => {
    ns = createNetns();
    work = mkdtempSync(join(tmpdir(), 'container-config-'));
  });

  after(() => {
    ns?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Started once it said its last listener is bound (the admin one, when there is one). */
  async function serve(config: string, ready: RegExp): Promise<RunningProcess> {
    const [cmd, args] = ns.exec(process.execPath, [...CLI, 'serve', '--config', config]);
    return startProcess(cmd, args, { ready });
  }

  async function health(config: string): Promise<{ code: number; out: string }> {
    const [cmd, args] = ns.exec(process.execPath, [...CLI, 'health', '--config', config]);
    try {
      return { code: 0, out: (await exec(cmd, args)).stdout };
    } catch (err) {
      const e = err as { code: number; stdout: string };
      return { code: e.code, out: e.stdout };
    }
  }

  test('answers from outside on 0.0.0.0, refuses outside `allow`, and the HEALTHCHECK is green', async () => {
    const svc = await serve('config/container.yaml', /admin .*listening on/);
    try {
      assert.match(await firstLine(ns.inside, 10025, ns.gateway), /^220 /);
      assert.match(await firstLine(ns.inside, 10025, ns.outsider), /^554 5\.7\.1 /);
      const readyz = await fetch(`http://${ns.inside}:9464/readyz`);
      assert.equal(readyz.status, 200);
      const probe = await health('config/container.yaml');
      assert.equal(probe.code, 0, probe.out);
      assert.match(probe.out, /http:\/\/127\.0\.0\.1:9464\/readyz: 200 ready/);
    } finally {
      await svc.stop();
    }
    assert.equal(svc.child.exitCode, 0, `serve on SIGTERM:\n${svc.output()}`);
  });

  test('a config without admin: `health` checks that the listeners are bound, and says so', async () => {
    const noAdmin = join(work, 'no-admin.yaml');
    const text = readFileSync('config/container.yaml', 'utf8').replace(/^admin:\n {2}listen: .*\n/m, '');
    assert.doesNotMatch(text, /^admin:/m);
    writeFileSync(noAdmin, text);
    const svc = await serve(noAdmin, /smarthost listening on/);
    let probe;
    try {
      probe = await health(noAdmin);
    } finally {
      await svc.stop();
    }
    assert.equal(probe.code, 0, probe.out);
    assert.match(probe.out, /has no admin section, so there is no \/readyz to probe; checking only that each listener is bound/);
    assert.match(probe.out, /^smarthost 0\.0\.0\.0:10025: listening$/m);
    const down = await health(noAdmin);
    assert.equal(down.code, 1, down.out);
    assert.match(down.out, /^smarthost 0\.0\.0\.0:10025: nothing listening$/m);
  });
});
