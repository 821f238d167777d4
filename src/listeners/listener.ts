import type { AddressInfo } from 'node:net';

/**
 * What the service needs of any listener: start, report its address and load, stop gracefully.
 * TcpListener has this shape; a listener built on another server (the HTTP proxy) has it too.
 */
export interface Listener {
  readonly name: string;
  readonly activeConnections: number;
  start(): Promise<AddressInfo>;
  address(): AddressInfo;
  /** Stops accepting; open sessions may finish within `timeoutMs`, the rest are cut. */
  stop(timeoutMs: number): Promise<void>;
}
