import { inspect } from 'node:util';
import { readPassword } from '../config/files.js';
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
  return new Credentials(cfg.username, readPassword(cfg, where, env));
}
