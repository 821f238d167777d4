import type { CertPair } from './certs.js';
import { startProcess, type RunningProcess } from './process.js';

/**
 * `openssl s_server` flavours with known ticket behaviour (see resumption-facts.md). All run with
 * `-www`: a `GET /` gets a page saying `New, ...` or `Reused, ...`, the server's own verdict.
 */
export const S_SERVER_MODES = {
  /** Stateless tickets: 2 per full handshake, 1 per resumption, a reused ticket is accepted. */
  tls13: ['-tls1_3'],
  /** Anti-replay on: a reused ticket is refused (silent full handshake). Renews on resumption. */
  'tls13-anti-replay': ['-tls1_3', '-max_early_data', '16384'],
  /** Stateful (session cache) TLS 1.3 tickets. */
  'tls13-stateful': ['-tls1_3', '-no_ticket'],
  /** TLS 1.2 with RFC 5077 tickets. */
  'tls12-tickets': ['-tls1_2'],
  /** TLS 1.2 with session ids only. */
  'tls12-session-ids': ['-tls1_2', '-no_ticket'],
} as const;

export type SServerMode = keyof typeof S_SERVER_MODES;

export interface SServer {
  host: string;
  port: number;
  mode: SServerMode;
  cert: CertPair;
  process: RunningProcess;
  stop(): Promise<void>;
}

/** Starts `openssl s_server` on an ephemeral loopback port; ready when it prints `ACCEPT host:port`. */
export async function startSServer(mode: SServerMode, cert: CertPair, extra: string[] = []): Promise<SServer> {
  const proc = await startProcess(
    'openssl',
    ['s_server', '-accept', '127.0.0.1:0', '-cert', cert.certFile, '-key', cert.keyFile, '-www', ...S_SERVER_MODES[mode], ...extra],
    { ready: /ACCEPT 127\.0\.0\.1:(\d+)/ },
  );
  return { host: '127.0.0.1', port: Number(proc.ready[1]), mode, cert, process: proc, stop: () => proc.stop() };
}
