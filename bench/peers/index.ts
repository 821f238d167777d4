/**
 * ticketbooth beside its peers in one run: stunnel (Debian's stunnel4, client mode) and a direct
 * Node TLS client. Four sections (`npm run bench -- peers-bulk peers-connections peers-smtp peers-idle`),
 * each interleaving the contenders rep by rep and reporting ratios ticketbooth/stunnel against
 * the goals. Ticketbooth runs from dist/ as shipped (built first when src/ is newer).
 */
export { run as bulk } from './bulk.js';
export { run as connections } from './connections.js';
export { run as smtp } from './smtp.js';
export { run as idle } from './idle.js';
