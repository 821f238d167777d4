import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP gate in front of a server: open, it relays; after `hold()` it accepts connections and
 * holds them (no byte passes) until `open()`, then joins each to the server in arrival order. With it a test can have several
 * ticketbooth connections take their offers before any handshake completes (a burst), without
 * sleeping: it waits for `held` to reach the count. Plain TCP relay; TLS stays end to end.
 */
export interface Gate {
  host: string;
  port: number;
  /** Connections waiting at the gate. */
  readonly held: number;
  /** Resolves once `count` connections are held (or fails after the timeout). */
  waitHeld(count: number, timeoutMs?: number): Promise<void>;
  /** From now on, hold new connections. */
  hold(): void;
  /** Joins the held connections to the server, one after the other in arrival order. */
  open(): Promise<void>;
  stop(): Promise<void>;
}

export async function startGate(target: { host: string; port: number }): Promise<Gate> {
  const waiting: Socket[] = [];
  const all = new Set<Socket>();
  let passThrough = true;
  const listeners = new Set<() => void>();
  const join = (client: Socket): Promise<void> =>
    new Promise((resolve) => {
      const upstream = connect({ host: target.host, port: target.port }, () => {
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
        resolve();
      });
      all.add(upstream);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.on('close', () => upstream.destroy());
    });
  const server = createServer((client) => {
    all.add(client);
    client.pause();
    if (passThrough) {
      void join(client);
      return;
    }
    waiting.push(client);
    for (const l of [...listeners]) l();
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  return {
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    get held() {
      return waiting.length;
    },
    waitHeld: (count, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (waiting.length < count) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`gate: ${waiting.length} of ${count} connections after ${timeoutMs} ms`));
        }, timeoutMs);
        listeners.add(check);
        check();
      }),
    hold: () => {
      passThrough = false;
    },
    open: async () => {
      passThrough = true;
      while (waiting.length > 0) await join(waiting.shift()!);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of all) s.destroy();
        server.close(() => resolve());
      }),
  };
}
