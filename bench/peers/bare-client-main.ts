/**
 * The bare Node TLS client as its own process, so its CPU is charged as a forwarder's is:
 * `node bench/peers/bare-client-main.ts HOST PORT SERVERNAME CAFILE [GROUPS]`. It says `ready`
 * over IPC, then runs each `{ count, inFlight }` it is sent (routes.ts `bareTls`: the forwarder's
 * upstream handshakes, each ticket offered once) and answers with the load's result.
 */
import { readFileSync } from 'node:fs';
import { load } from './load.js';
import { bareTls } from './routes.js';

const [host, port, servername, caFile, groups] = process.argv.slice(2);
const route = bareTls({ host, port: Number(port), servername, ca: readFileSync(caFile, 'utf8') }, groups || undefined);
const send = (m: unknown): void => void process.send?.(m);
process.on('message', (m: { count: number; inFlight: number }) => {
  load(route, m.count, m.inFlight).then(
    (result) => send({ result }),
    (err: unknown) => send({ error: String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
send({ ready: true });
