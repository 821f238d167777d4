import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';

/**
 * A network namespace of the test's own, joined to this one by a veth pair: the namespace has
 * `inside` (10.77.N.2), this side `gateway` (10.77.N.1) and `outsider` (100.64.N.1, an address
 * outside every private range, to be a client an allow list refuses). Needs root and iproute2.
 */
export interface Netns {
  name: string;
  inside: string;
  gateway: string;
  outsider: string;
  /** `cmd args` run inside the namespace: the argument list for spawn/execFile. */
  exec(cmd: string, args: string[]): [string, string[]];
  close(): void;
}

let made = 0;

export function createNetns(): Netns {
  const id = `${process.pid % 100_000}${made++}`;
  const net = ((process.pid + made) % 200) + 20;
  const name = `tbtest${id}`;
  const hostIf = `tbth${id}`;
  const nsIf = `tbtn${id}`;
  const gateway = `10.77.${net}.1`;
  const inside = `10.77.${net}.2`;
  const outsider = `100.64.${net}.1`;
  const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'pipe' });
  const close = (): void => {
    for (const args of [
      ['netns', 'del', name],
      ['link', 'del', hostIf],
    ])
      try {
        ip(...args);
      } catch {
        /* already gone */
      }
  };
  try {
    ip('netns', 'add', name);
    ip('-n', name, 'link', 'set', 'lo', 'up');
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    ip('link', 'set', nsIf, 'netns', name);
    ip('addr', 'add', `${gateway}/24`, 'dev', hostIf);
    ip('addr', 'add', `${outsider}/32`, 'dev', hostIf);
    ip('link', 'set', hostIf, 'up');
    ip('-n', name, 'addr', 'add', `${inside}/24`, 'dev', nsIf);
    ip('-n', name, 'link', 'set', nsIf, 'up');
    ip('-n', name, 'route', 'add', 'default', 'via', gateway);
  } catch (err) {
    close();
    throw err;
  }
  return { name, inside, gateway, outsider, exec: (cmd, args) => ['ip', ['netns', 'exec', name, cmd, ...args]], close };
}

/** The first line a TCP server says to a client connecting from `from` (an SMTP greeting). */
export function firstLine(host: string, port: number, from: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, localAddress: from, timeout: 5000 });
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (!got.includes('\n')) return;
      s.end('QUIT\r\n');
      resolve(got.split('\n')[0]?.trim() ?? '');
    });
    s.on('timeout', () => {
      s.destroy();
      reject(new Error(`${host}:${port}: no line within 5 s`));
    });
    s.on('error', reject);
  });
}

/** Whether this process may make network namespaces (root), as a reason to skip when not. */
export function notRoot(): string | undefined {
  return process.getuid?.() === 0 ? undefined : 'needs root (ip netns)';
}
