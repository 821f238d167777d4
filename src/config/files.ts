import { readFileSync } from 'node:fs';
import { ConfigError } from './load.js';

/**
 * Reads a file the config names (a CA bundle, a client certificate or key, a password file) as
 * text. Called once, at start, so a bad path fails the start; every such failure reads the same:
 * `<where>: cannot read <what> file <path>: no such file or directory (ENOENT)`.
 */
export function readConfigFile(file: string, what: string, where?: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Node's text repeats the code and the path: `ENOENT: no such file or directory, open '/x'`.
    const why = e.code ? `${e.message.replace(/^\w+: /, '').replace(/, \w+(?: '.*')?$/, '')} (${e.code})` : e.message;
    throw new ConfigError(`${where ? `${where}: ` : ''}cannot read ${what} file ${file}: ${why}`, { cause: err });
  }
}
