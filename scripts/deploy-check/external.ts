import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emptyResult, type CheckResult } from './findings.js';

function which(tool: string): string | undefined {
  return ['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin'].map((d) => join(d, tool)).find((p) => existsSync(p));
}

/**
 * Checks by the programs that read these files: `systemd-analyze verify` on the unit, `postconf`
 * on the Compose MTA's main.cf. Any line either prints about the file is a finding (an unknown key
 * is only a warning to them, with exit 0). Skipped, with the reason, where the program is missing.
 */
export function checkWithPrograms(root: string): CheckResult {
  const result = emptyResult();
  const work = mkdtempSync(join(tmpdir(), 'validate-deploy-'));
  try {
    const unit = 'deploy/systemd/ticketbooth.service';
    const analyze = which('systemd-analyze');
    if (!analyze) result.skipped.push(`${unit}: systemd-analyze is not installed (Debian package systemd)`);
    else {
      // verify wants ExecStart's program to exist: the copy names this node and the built CLI
      // instead of /usr/local/bin/ticketbooth (the path an `npm install -g` gives).
      const text = readFileSync(join(root, unit), 'utf8').replace(
        /^ExecStart=\/usr\/local\/bin\/ticketbooth /m,
        `ExecStart=${process.execPath} ${join(root, 'dist/src/cli.js')} `,
      );
      writeFileSync(join(work, 'ticketbooth.service'), text);
      const r = spawnSync(analyze, ['verify', join(work, 'ticketbooth.service')], { encoding: 'utf8' });
      // Lines about this unit only: verify also loads the machine's own units (the targets it names).
      const said = `${r.stdout}${r.stderr}`
        .split('\n')
        .filter((l) => l.includes('ticketbooth'))
        .join('\n');
      if (r.status !== 0 || said) result.findings.push({ file: unit, message: `systemd-analyze verify: ${said || `exit ${r.status}`}` });
      else result.checked.push(`${unit}: systemd-analyze verify`);
    }
    const mainCf = 'deploy/compose/mta/main.cf';
    const postconf = which('postconf');
    if (!postconf) result.skipped.push(`${mainCf}: postconf is not installed (Debian package postfix)`);
    else {
      copyFileSync(join(root, mainCf), join(work, 'main.cf'));
      if (existsSync('/etc/postfix/master.cf')) copyFileSync('/etc/postfix/master.cf', join(work, 'master.cf'));
      const r = spawnSync(postconf, ['-c', work, '-n'], { encoding: 'utf8' });
      if (r.status !== 0 || r.stderr.trim())
        result.findings.push({ file: mainCf, message: `postconf: ${r.stderr.trim() || `exit ${r.status}`}` });
      else result.checked.push(`${mainCf}: postconf (every parameter known to Postfix)`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return result;
}
