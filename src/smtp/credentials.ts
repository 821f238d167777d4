import { inspect } from 'node:util';
import { readConfigFile } from '../config/files.js';
import type { SmtpAuthConfig } from '../config/smtp-schema.js';

/**
 * AUTH credentials for a next hop, from a file or the environment (never the command line).
 * The password is not an own enumerable property and `inspect`/JSON show it redacted, so a
 * stray log line or error dump cannot carry it.
 */
export class Credentials {
  readonly #password: string;

  constructor(
    readonly username: string,
    password: string,
  ) {
    this.#password = password;
  }

  /** `AUTH PLAIN` initial response (RFC 4616): authzid empty, authcid, password. */
  plain(): string {
    return Buffer.from(`\0${this.username}\0${this.#password}`, 'utf8').toString('base64');
  }

  password64(): string {
    return Buffer.from(this.#password, 'utf8').toString('base64');
  }

  user64(): string {
    return Buffer.from(this.username, 'utf8').toString('base64');
  }

  toJSON(): object {
    return { username: this.username, password: '[redacted]' };
  }

  [inspect.custom](): string {
    return `Credentials { username: ${JSON.stringify(this.username)}, password: [redacted] }`;
  }
}

export function loadCredentials(cfg: SmtpAuthConfig, where: string, env: NodeJS.ProcessEnv = process.env): Credentials {
  let password: string | undefined;
  if (cfg.passwordFile !== undefined) {
    // One trailing newline is the editor's, not the password's.
    password = readConfigFile(cfg.passwordFile, 'password', where).replace(/\r?\n$/, '');
  } else if (cfg.passwordEnv !== undefined) {
    password = env[cfg.passwordEnv];
    if (password === undefined) throw new Error(`${where}: environment variable ${cfg.passwordEnv} is not set`);
  }
  if (!password) throw new Error(`${where}: empty password`);
  return new Credentials(cfg.username, password);
}
