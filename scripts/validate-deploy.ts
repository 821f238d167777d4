// Validates the deployment files without a container engine or a cluster: config/container.yaml
// with ticketbooth's own loader, deploy/compose.yaml against the Compose specification's schema,
// deploy/kubernetes/*.yaml against the Kubernetes API's schema (unknown fields refused), each
// ticketbooth config they carry, the files against each other, and (unless --no-programs) the
// systemd unit with systemd-analyze and the MTA's main.cf with postconf.
// Run: node --import tsx scripts/validate-deploy.ts [--root DIR] [--no-programs]; exit 1 on any finding.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { checkCompose } from './deploy-check/compose.js';
import { checkWithPrograms } from './deploy-check/external.js';
import { emptyResult, formatFinding, merge, type CheckResult } from './deploy-check/findings.js';
import { checkKubernetes } from './deploy-check/kubernetes.js';

export async function validateDeploy(root: string, options: { programs?: boolean } = {}): Promise<CheckResult> {
  const result = emptyResult();
  const container = 'config/container.yaml';
  const file = resolve(root, container);
  try {
    loadConfig(file);
    result.checked.push(`${container}: ticketbooth config (ticketbooth's loader)`);
  } catch (err) {
    result.findings.push({ file: container, message: (err as Error).message.replace(`${file}: `, '') });
  }
  merge(result, checkCompose(root));
  merge(result, await checkKubernetes(root));
  if (options.programs !== false) merge(result, checkWithPrograms(root));
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const rootAt = args.indexOf('--root');
  const root = resolve(rootAt >= 0 ? (args[rootAt + 1] ?? '.') : resolve(import.meta.dirname, '..'));
  const result = await validateDeploy(root, { programs: !args.includes('--no-programs') });
  for (const line of result.checked) console.log(`ok: ${line}`);
  for (const line of result.skipped) console.log(`skipped: ${line}`);
  for (const f of result.findings) console.error(`FAIL: ${formatFinding(f)}`);
  console.log(
    `validate-deploy: ${result.checked.length} checks passed, ${result.findings.length} findings, ${result.skipped.length} skipped`,
  );
  process.exitCode = result.findings.length > 0 ? 1 : 0;
}
