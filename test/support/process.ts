import { spawn, type ChildProcess } from 'node:child_process';

export interface RunningProcess {
  child: ChildProcess;
  /** What the process wrote so far (stdout and stderr, interleaved). */
  output(): string;
  /** The match of the readiness pattern. */
  ready: RegExpMatchArray;
  /** SIGTERM (the whole process group when started detached), SIGKILL after 3 s; resolves on exit. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Resolves once the output matches this (an event the program reports, never a sleep). */
  ready: RegExp;
  timeoutMs?: number;
  /** Own process group: for programs that fork workers (haproxy -W), so stop() ends them too. */
  group?: boolean;
  cwd?: string;
}

/** Starts a program and waits for it to say it is ready; fails with its output if it exits first. */
export function startProcess(cmd: string, args: string[], opts: StartOptions): Promise<RunningProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: opts.group ?? false, cwd: opts.cwd });
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = (sig: NodeJS.Signals): void => {
    try {
      if (opts.group && child.pid !== undefined) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      /* already gone */
    }
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${cmd} not ready within ${opts.timeoutMs ?? 10_000} ms; output:\n${out}`));
    }, opts.timeoutMs ?? 10_000);
    let done = false;
    const onData = (chunk: Buffer): void => {
      out += chunk.toString('utf8');
      if (out.length > 1_000_000) out = out.slice(-500_000); // long runs print per connection
      const m = done ? null : opts.ready.exec(out);
      if (m) {
        done = true;
        clearTimeout(timer);
        resolve({ child, output: () => out, ready: m, stop });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${err.message}`));
    });
    child.once('exit', (code, sig) => {
      if (done) return;
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code ?? sig}) before it was ready; output:\n${out}`));
    });
  });
}
