/**
 * What ticketbooth says to a person on stderr (start, listeners, failures, shutdown): one line
 * each, `ticketbooth: ...` as text, or one JSON object per line for containers whose log
 * collectors parse JSON (`log.format: json`). `log.level` drops the less severe lines. The audit
 * log stays the machine record; this is the operator's.
 */
export type OperatorLevel = 'error' | 'warn' | 'info';

const RANK: Record<OperatorLevel, number> = { error: 0, warn: 1, info: 2 };

let settings: { format: 'text' | 'json'; level: OperatorLevel } = { format: 'text', level: 'info' };

export function configureOperatorLog(s: { format: 'text' | 'json'; level: OperatorLevel }): void {
  settings = s;
}

/** One line for a person; `message` without the `ticketbooth: ` prefix and without a newline. */
export function say(level: OperatorLevel, message: string): void {
  if (RANK[level] > RANK[settings.level]) return;
  process.stderr.write(
    settings.format === 'json'
      ? `${JSON.stringify({ time: new Date().toISOString(), level, msg: message })}\n`
      : `ticketbooth: ${message}\n`,
  );
}

/** The end of a command's graceful stop: exit 0 once `stopped` resolves; say why and exit 1 if it rejects. */
export function exitWhenStopped(stopped: Promise<unknown>): void {
  stopped.then(
    () => process.exit(0),
    (err: unknown) => {
      say('error', `shutdown: ${String(err)}`);
      process.exit(1);
    },
  );
}
