/** RFC 3461 words as the spool and the session both use them (the spool imports nothing from the session's side). */

/** Whether NOTIFY asks for `what` (no NOTIFY: failures and delays only, RFC 3461 4.1). */
export function wants(dsn: { notify?: string } | undefined, what: 'SUCCESS' | 'FAILURE'): boolean {
  if (dsn?.notify === undefined) return what === 'FAILURE';
  return dsn.notify.split(',').includes(what);
}

/** ` WORD WORD`: the words to append to a command line for a hop that announces DSN. */
export function dsnSuffix(words: readonly string[] | undefined): string {
  return words && words.length > 0 ? ` ${words.join(' ')}` : '';
}
