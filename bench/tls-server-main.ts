/**
 * The Node TLS test server as its own process, so a benchmark's client does not share a thread
 * with it: `node --import tsx bench/tls-server-main.ts CERT KEY` prints `listening on PORT`.
 */
import { readFileSync } from 'node:fs';
import { startNodeTlsServer } from '../test/support/node-tls-server.js';

const [certFile, keyFile] = process.argv.slice(2);
const server = await startNodeTlsServer({
  cert: { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile },
});
process.stdout.write(`listening on ${server.port}\n`);
process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
