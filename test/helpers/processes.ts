// Real pushline processes (the CLI, as users run it) for kill and restart tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/pushline.js', import.meta.url));

export interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export function spawnPushline(args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: '/tmp', // no project .env: the test's env is the whole configuration
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, output: () => out, exited: exitedWithOutput(child) };
}

/**
 * The child's exit code, once its output has been read too: Node may emit 'exit' before the
 * last 'data' of the child's pipes (its docs say so), and a test reads `output()` right after.
 * 'close' waits for the pipes; a grandchild that inherited one (`pushline start`'s Redis guard)
 * can hold it open, so at most 2 s after the exit it settles anyway.
 */
export function exitedWithOutput(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('close', (code) => resolve(code));
    child.once('exit', (code) => {
      const late = setTimeout(() => resolve(code), 2000);
      late.unref();
      child.once('close', () => clearTimeout(late));
    });
  });
}
