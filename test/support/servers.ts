/** Real servers on loopback for tests and the benchmark: one import for all of them. */
export { startSServer, S_SERVER_MODES, type SServer, type SServerMode } from './s-server.js';
export { startNodeTlsServer, type NodeTlsServer, type NodeTlsServerOptions } from './node-tls-server.js';
export { startHaproxy, type Haproxy } from './haproxy.js';
export { startSmtpServer, type SmtpTestServer, type SmtpServerOptions, type SmtpServerStats } from './smtp-server.js';
export { startProcess, type RunningProcess } from './process.js';
export { freeTcpPort, freeLoopbackAddress } from './ports.js';
export { getPlain, getTls, parseVerdict, verdictPlain, type Verdict, type TlsGet } from './www-client.js';
