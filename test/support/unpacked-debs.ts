import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireInterop } from './interop.js';

/**
 * MTAs whose Debian packages conflict with postfix (which the other interop tests need installed):
 * scripts/install-mtas.sh unpacks them with `dpkg -x` into one folder, default
 * /opt/ticketbooth-mtas (or $TICKETBOOTH_MTAS_DIR), and the tests run them from there with a
 * config file of their own, filled from examples/mta/.
 */
export const mtasDir = process.env.TICKETBOOTH_MTAS_DIR ?? '/opt/ticketbooth-mtas';

const binaries = {
  exim4: 'usr/sbin/exim4',
  smtpd: 'usr/sbin/smtpd',
  sendmail: 'usr/libexec/sendmail/sendmail',
  'sendmail-cf': 'usr/share/sendmail/cf/m4/cf.m4',
} as const;
export type UnpackedTool = keyof typeof binaries;

/** The unpacked file's path (whether or not it is there). */
export function unpacked(tool: UnpackedTool): string {
  return join(mtasDir, binaries[tool]);
}

/** The environment to run an unpacked binary with (its own libraries first, should the package ship any). */
export function unpackedEnv(): NodeJS.ProcessEnv {
  return { ...process.env, LD_LIBRARY_PATH: join(mtasDir, 'usr/lib/x86_64-linux-gnu') };
}

/** Like interop.ts `missing`, for unpacked tools: a skip reason, or a failure under TICKETBOOTH_REQUIRE_INTEROP=1. */
export function missingUnpacked(...tools: UnpackedTool[]): string | undefined {
  const absent = tools.filter((t) => {
    try {
      accessSync(unpacked(t), t === 'sendmail-cf' ? constants.R_OK : constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (absent.length === 0) return undefined;
  const reason = `needs ${absent.join(', ')} unpacked in ${mtasDir} (scripts/install-mtas.sh, which .ci/run calls)`;
  if (requireInterop) throw new Error(`TICKETBOOTH_REQUIRE_INTEROP=1 but ${reason}`);
  return reason;
}

const examplesDir = new URL('../../examples/mta/', import.meta.url);

/** examples/mta/NAME with each `{{KEY}}` replaced; a placeholder left unfilled is an error. */
export function fillExample(name: string, values: Record<string, string | number>): string {
  const text = readFileSync(new URL(name, examplesDir), 'utf8').replace(/\{\{(\w+)\}\}/g, (whole, key: string) =>
    key in values ? String(values[key]) : whole,
  );
  const left = /\{\{\w+\}\}/.exec(text);
  if (left) throw new Error(`examples/mta/${name}: no value for ${left[0]}`);
  return text;
}
