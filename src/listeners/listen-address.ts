/** Splits `HOST:PORT`, `[v6]:PORT` or `PORT` (loopback). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen);
  if (m) return { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) };
  if (/^\d+$/.test(listen)) return { host: '127.0.0.1', port: Number(listen) };
  throw new Error(`listen: "${listen}" is not HOST:PORT`);
}
