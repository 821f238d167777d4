import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { missing } from '../support/interop.js';

const run = promisify(execFile);

/** The README's "Try it" walkthrough, examples/try-it.sh, as a reader would run it: the server's own verdicts, then the report. */
test(
  'examples/try-it.sh: the first request is a full handshake, later ones resumed by the server, and the report says so',
  { skip: missing('openssl', 'curl') },
  async () => {
    if (!existsSync('dist/src/cli.js')) execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json']);
    const { stdout } = await run('bash', ['examples/try-it.sh'], { timeout: 60_000 });
    assert.match(stdout, /request 1: the server says: New, TLSv1\.3/);
    assert.ok((stdout.match(/request [2-5]: the server says: Reused, TLSv1\.3/g) ?? []).length >= 3, stdout);
    assert.match(stdout, /ticketbooth audit: 5 TLS handshakes to 1 destination/);
    assert.match(stdout, /connections 5, resumed [34] /);
  },
);
