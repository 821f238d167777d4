import { spawn, type ChildProcess } from 'node:child_process';

export interface ReadyProcess {
  child: ChildProcess;
  /** The match of the readiness pattern in the program's output. */
  ready: RegExpMatchArray;
  /** Everything the program printed so far. */
  output(): string;
  /** SIGTERM, SIGKILL after 3 s; resolves when it has exited. */
  stop(): Promise<void>;
}

/**
 * Starts a program and resolves once its output matches `ready` (the program says it is ready:
 * no fixed sleeps); rejects with its output if it exits first or takes longer than `timeoutMs`.
 */
export function spawnReady(cmd: string, args: string[], ready: RegExp, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<ReadyProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd });
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${cmd} not ready within ${opts.timeoutMs ?? 10_000} ms; output:\n${out}`));
    }, opts.timeoutMs ?? 10_000);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString('utf8');
      if (out.length > 200_000) out = out.slice(-100_000);
      const m = done ? null : ready.exec(out);
      if (m) {
        done = true;
        clearTimeout(timer);
        resolve({ child, ready: m, output: () => out, stop });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      if (done) return;
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code ?? signal}) before it was ready; output:\n${out}`));
    });
  });
}
