/**
 * Faults a next hop can show at each stage of an SMTP dialogue, as `ACTION-at-STAGE`, for the
 * stress campaign's fault matrix (`npm run stress -- faults`): at that stage, instead of its
 * normal answer, the server
 * - `drop`: closes the connection;
 * - `stall`: says nothing more, ever (the connection stays open);
 * - `garbage`: answers a line that is not an SMTP reply, then carries on;
 * - `closing`: answers `421` and closes (a next hop shutting down).
 *
 * Stages: `greeting` (on connect), `ehlo`, `starttls`, `tls` (after its `220` to STARTTLS, instead
 * of the handshake; garbage there is non-TLS bytes), `tls-ehlo` (EHLO inside TLS), `mail`, `rcpt`,
 * `data`, `dot` (the end of data; nothing is stored), `rset` (the connection cache's probe before reuse).
 */
export const STAGES = ['greeting', 'ehlo', 'starttls', 'tls', 'tls-ehlo', 'mail', 'rcpt', 'data', 'dot', 'rset'] as const;
export const ACTIONS = ['drop', 'stall', 'garbage', 'closing'] as const;

export type Stage = (typeof STAGES)[number];
export type StageAction = (typeof ACTIONS)[number];
export type StageFault = `${StageAction}-at-${Stage}`;

export const GARBAGE_REPLY = 'HTTP/1.1 400 what is this?';

/** The action a fault takes at `stage`, if it is a stage fault for that stage. */
export function stageAction(fault: string, stage: Stage): StageAction | undefined {
  for (const a of ACTIONS) if (fault === `${a}-at-${stage}`) return a;
  return undefined;
}
