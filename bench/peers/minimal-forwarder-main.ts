/**
 * The least a Node forwarder can do per connection, as its own process: accept, `tls.connect` with
 * one shared context offering each ticket once (newest first, 8 kept, as routes.ts `bareTls`), and
 * `pipe()` both ways; no audit, no cache bookkeeping, no timeouts, no admission.
 * `node bench/peers/minimal-forwarder-main.ts HOST PORT SERVERNAME CAFILE` prints
 * `listening on 127.0.0.1:PORT`. bench/cpu-floor.ts compares it with the bare client: the cost of
 * the second socket any Node forwarder has, above the bare client's one.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { connect, createSecureContext } from 'node:tls';

const [host, port, servername, caFile] = process.argv.slice(2);
const secureContext = createSecureContext({ ca: readFileSync(caFile, 'utf8') });
const tickets: Buffer[] = [];

const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
  client.on('error', () => undefined);
  const session = tickets.pop();
  const upstream = connect({ host, port: Number(port), servername, secureContext, ...(session ? { session } : {}) });
  upstream.on('error', () => undefined);
  upstream.on('session', (s: Buffer) => {
    tickets.push(s);
    if (tickets.length > 8) tickets.shift();
  });
  client.pipe(upstream);
  upstream.pipe(client);
  upstream.on('close', () => client.destroy());
  client.on('close', () => upstream.end());
});
server.listen(0, '127.0.0.1', () => {
  const at = server.address();
  process.stderr.write(`listening on 127.0.0.1:${typeof at === 'object' && at ? at.port : 0}\n`);
});
