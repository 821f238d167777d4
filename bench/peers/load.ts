/**
 * The connection-setup load, shared by the benchmark process (through a forwarder) and the bare
 * client process (its own TLS): each connection sends `GET /` and reads the Node bench server's
 * one-line page to its close; the page says whether the server resumed (`Reused`) or not (`New`).
 */
import type { Route } from './routes.js';

export interface Reply {
  ms: number;
  reused: boolean;
}

export interface LoadResult {
  seconds: number;
  replies: Reply[];
}

/** One connection: connect, `GET /`, read the page to the server's close. */
function request(route: Route): Promise<Reply> {
  const started = performance.now();
  const { socket, ready } = route.open();
  return new Promise((resolve, reject) => {
    let page = '';
    let ms = NaN;
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (page += c));
    socket.once('end', () => (ms = performance.now() - started));
    socket.on('error', reject);
    socket.on('close', () => {
      const m = /(New|Reused), (TLSv[\d.]+)/.exec(page);
      if (!m || m[2] !== 'TLSv1.3') reject(new Error(`${route.name}: unexpected reply ${JSON.stringify(page.slice(0, 80))}`));
      else resolve({ ms, reused: m[1] === 'Reused' });
    });
    socket.once(ready, () => socket.write('GET / HTTP/1.0\r\n\r\n'));
  });
}

/** `count` connections, `inFlight` at a time. */
export async function load(route: Route, count: number, inFlight: number): Promise<LoadResult> {
  const replies: Reply[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        next++;
        replies.push(await request(route));
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, replies };
}
