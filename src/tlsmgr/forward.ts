import { createConnection } from 'node:net';
import { type Attrs, AttrReader, encodeAttrs } from './attr0.js';
import type { Forwarder } from './handler.js';
import type { Reply } from './requests.js';

const MAX_REPLY = 64 * 1024;

/**
 * Sends one request to the real tlsmgr(8) at `path` (`$queue_directory/private/tlsmgr`) and
 * returns its reply unchanged. A connection per request: tlsmgr answers in microseconds and
 * seed/tktkey are rare next to session lookups, so holding connections open buys nothing.
 */
export function forwarderTo(path: string, timeoutMs = 5000): Forwarder {
  return (req: Attrs) =>
    new Promise<Reply>((resolve, reject) => {
      const socket = createConnection(path);
      const reader = new AttrReader(MAX_REPLY);
      let announced = false;
      const fail = (why: string): void => {
        socket.destroy();
        reject(new Error(why));
      };
      socket.setTimeout(timeoutMs, () => fail(`no answer from ${path} in ${timeoutMs} ms`));
      socket.on('error', (err) => fail(err.message));
      socket.on('end', () => fail(`${path} closed the connection`));
      socket.on('data', (chunk: Buffer) => {
        let lists: Attrs[];
        try {
          lists = reader.push(chunk);
        } catch (err) {
          fail((err as Error).message);
          return;
        }
        for (const list of lists) {
          if (!announced) {
            // tlsmgr_post_accept: `protocol=tlsmgr_protocol` first (Postfix ≥ 3.x clients insist on it).
            if (list.get('protocol') !== 'tlsmgr_protocol') return fail(`${path} is not a tlsmgr`);
            announced = true;
            socket.write(encodeAttrs(req));
            continue;
          }
          socket.removeAllListeners('end');
          socket.end();
          resolve([...list]);
          return;
        }
      });
    });
}
