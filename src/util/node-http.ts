/**
 * node:http's CommonJS exports, for the modules that use its values (types still come from
 * `import type`). An ES `import` of node:http builds a namespace from every export, and reading
 * its WebSocket/CloseEvent/MessageEvent getters loads undici with http2, zlib and web streams,
 * idle memory (docs/measured.md) in a process that uses none of them.
 */
export const http = process.getBuiltinModule('node:http');
