import type { Socket } from 'node:net';

/**
 * One direction of the tunnel: what `from` reads is written to `to`, as `from.pipe(to)` did (the
 * same back-pressure, and the same stop when `to` closes, finishes or fails), with two fewer costs
 * per chunk on a bulk transfer:
 *
 * - A chunk that is the whole of its ArrayBuffer (a plain socket's read is) gives its memory back
 *   as soon as `to` has taken it. Left to the garbage collector, every read counts as V8 external
 *   memory until the next scavenge, and a relay allocates so little on the JS heap that scavenges
 *   are rare: V8 ran a full mark-compact for each ~64 MiB relayed instead (15 per GiB uploaded,
 *   each marking the whole heap), about half of ticketbooth's CPU on an upload.
 * - `from` pauses only on a backlog in `to`. `write()` returns false for any chunk as large as the
 *   high-water mark (a 64 KiB read) even when the socket took it at once, and pipe() stopped and
 *   restarted reading for each such chunk.
 *
 * Either way `to` holds at most its high-water mark plus one read before `from` stops reading.
 */
export function forward(from: Socket, to: Socket, opts: { end: boolean }): void {
  const onData = (chunk: Buffer): void => {
    if (ownsItsMemory(chunk)) to.write(chunk, () => release(chunk));
    else to.write(chunk);
    if (to.writableLength >= to.writableHighWaterMark) from.pause();
  };
  from.on('data', onData);
  relayLifecycle(from, to, { end: opts.end, onStop: () => from.off('data', onData) });
}

/**
 * What pipe() does around the bytes, for a relay that moves them itself: `from` resumes once `to`
 * is empty again ('drain' follows every write() that returned false); `from`'s end stops the relay
 * and, with `end`, ends `to`; when `to` closes, finishes or fails (unpipe) the relay stops and
 * `from` is left paused. `onStop` detaches the caller's own reading.
 */
export function relayLifecycle(from: Socket, to: Socket, opts: { end: boolean; onStop: () => void }): void {
  const onDrain = (): void => void from.resume();
  const onEnd = (): void => {
    stop();
    if (opts.end) to.end();
  };
  const stop = (): void => {
    opts.onStop();
    from.off('end', onEnd);
    to.off('drain', onDrain);
    to.off('close', stop);
    to.off('finish', stop);
    to.off('error', stop);
    from.pause();
  };
  // Plain listeners, not once(): stop removes them all, and once() costs a wrapper and a bound
  // function per listener, on every connection.
  to.on('drain', onDrain);
  to.on('close', stop);
  to.on('finish', stop);
  to.prependListener('error', stop);
  if (from.readableEnded) process.nextTick(onEnd);
  else from.on('end', onEnd);
}

/**
 * Whether nothing but this chunk can see its memory. A plain socket reads into a fresh ArrayBuffer
 * each time (cut to size unless the read nearly filled it); a TLS socket cuts its 16 KiB records
 * out of a shared 64 KiB one, and those are left to the garbage collector.
 */
function ownsItsMemory(chunk: Buffer): boolean {
  return (
    chunk.byteOffset === 0 && chunk.byteLength > 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer
  );
}

/**
 * Frees a chunk's memory now, and with it V8's count of external memory: its write callback has
 * run, so the bytes are in the kernel or, for TLS, encrypted into OpenSSL's buffer, and nobody
 * reads the chunk again. Detaching leaves the chunk empty (length 0).
 */
function release(chunk: Buffer): void {
  try {
    (chunk.buffer as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);
  } catch {
    // Not detachable: the garbage collector frees it, as before.
  }
}
