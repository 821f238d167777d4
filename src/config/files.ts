import { readFileSync } from 'node:fs';
import { ConfigError } from './load.js';

/**
 * Reads a file the config names (a CA bundle, a client certificate or key, a password file) as
 * text. Called once, at start, so a bad path fails the start; every such failure reads the same:
 * `<where>: cannot read <what> file <path>: no such file or directory (ENOENT)`.
 */
export function readConfigFile(file: string, what: string, where?: string): string {
  return readConfigBytes(file, what, where).toString('utf8');
}

/** As `readConfigFile`, the bytes as they are (a key file may be raw binary). */
export function readConfigBytes(file: string, what: string, where?: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Node's text repeats the code and the path: `ENOENT: no such file or directory, open '/x'`.
    const why = e.code ? `${e.message.replace(/^\w+: /, '').replace(/, \w+(?: '.*')?$/, '')} (${e.code})` : e.message;
    throw new ConfigError(`${where ? `${where}: ` : ''}cannot read ${what} file ${file}: ${why}`, { cause: err });
  }
}

/**
 * A password the config names (see `passwordSource`): the file's text less one trailing newline
 * (the editor's, not the password's), or the environment variable's value. Never empty.
 */
export function readPassword(
  cfg: { passwordFile?: string | undefined; passwordEnv?: string | undefined },
  where: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  let password: string | undefined;
  if (cfg.passwordFile !== undefined) {
    password = readConfigFile(cfg.passwordFile, 'password', where).replace(/\r?\n$/, '');
  } else if (cfg.passwordEnv !== undefined) {
    password = env[cfg.passwordEnv];
    if (password === undefined) throw new Error(`${where}: environment variable ${cfg.passwordEnv} is not set`);
  }
  if (!password) throw new Error(`${where}: empty password`);
  return password;
}
