import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { say } from '../util/operator-log.js';
import { packageRoot } from '../util/package-root.js';
import { ConfigError, loadConfig } from './load.js';
import type { Config } from './schema.js';

/** The variable naming the config file when `--config` does not. */
export const CONFIG_ENV = 'TICKETBOOTH_CONFIG';
/** The system-wide config (the path the Dockerfile, the systemd unit and Kubernetes use). */
export const SYSTEM_CONFIG = '/etc/ticketbooth/ticketbooth.yaml';

/** Each place a config comes from, and how the line naming the file says it. */
const WHY = {
  '--config': 'from --config',
  env: `from $${CONFIG_ENV}`,
  system: `no --config or $${CONFIG_ENV}`,
  package: `the package's default: no --config, no $${CONFIG_ENV}, no ${SYSTEM_CONFIG}`,
} as const;

/** The config file a command reads, and why that one (for the line that names it). */
export interface ConfigChoice {
  file: string;
  from: keyof typeof WHY;
}

/**
 * Which config file `serve`, `reload` and `health` read: `--config`; else `$TICKETBOOTH_CONFIG`;
 * else /etc/ticketbooth/ticketbooth.yaml when it exists; else the package's own
 * config/default.yaml (found from where ticketbooth is installed, not from the current folder).
 * A file named by the flag or the variable is taken as named: a wrong name is an error, not a
 * reason to fall through to another file.
 */
export function findConfig(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  exists: (file: string) => boolean = existsSync,
): ConfigChoice {
  if (flag) return { file: flag, from: '--config' };
  const named = env[CONFIG_ENV];
  if (named) {
    if (!exists(named)) throw new ConfigError(`$${CONFIG_ENV} names ${named}, which does not exist`);
    return { file: named, from: 'env' };
  }
  if (exists(SYSTEM_CONFIG)) return { file: SYSTEM_CONFIG, from: 'system' };
  const root = packageRoot()?.dir;
  const shipped = root ? join(root, 'config', 'default.yaml') : undefined;
  if (shipped && exists(shipped)) return { file: shipped, from: 'package' };
  throw new ConfigError(
    `no config file: no --config, $${CONFIG_ENV} is not set, and neither ${SYSTEM_CONFIG} nor ${shipped ?? "the package's config/default.yaml"} exists`,
  );
}

/** `config FILE (why this one)`: said at start, so nobody has to guess which file is in force. */
export function describeChoice(c: ConfigChoice): string {
  return `config ${c.file} (${WHY[c.from]})`;
}

/** A command's config (`health`, `reload`): found as `serve` finds it, the file named when it was searched for. */
export function loadFoundConfig(flag: string | undefined): { file: string; config: Config } {
  const choice = findConfig(flag);
  if (choice.from !== '--config') say('info', describeChoice(choice));
  return { file: choice.file, config: loadConfig(choice.file) };
}
