/** TLS-RPT's result types (RFC 8460 4.3.2) for an attempt's error code: derived from the error table (errors/codes.ts). */
export { resultTypeOf } from '../errors/classify.js';
