// AUDIO_PROCESSOR_CMD: an operator's tool run on each downloaded file, without a shell — the
// audio URL and its bytes come from API users, so nothing they control is ever parsed as shell
// syntax. The command is a JSON array of arguments (`["ffmpeg","-i","{input}","{output_dir}/x.mp3"]`)
// or, when no argument needs a space, plain words split on whitespace. Placeholders, replaced
// inside any argument: {input} (the downloaded file), {output_dir} (an empty directory whose files
// logic serves afterwards) and {task_id}.
import { spawn } from 'node:child_process';

export const PLACEHOLDERS = ['input', 'output_dir', 'task_id'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

const PLACEHOLDER = /\{([A-Za-z_]+)\}/g;
const TAIL_BYTES = 4096;

/** The command as arguments, validated; throws an Error whose message names the problem. */
export function parseCommandTemplate(text: string): string[] {
  const trimmed = text.trim();
  let argv: unknown;
  if (trimmed.startsWith('[')) {
    try {
      argv = JSON.parse(trimmed);
    } catch (err) {
      throw new Error(`is not a valid JSON array: ${(err as Error).message}`);
    }
    if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) throw new Error('must be a JSON array of strings');
  } else {
    argv = trimmed.split(/\s+/).filter(Boolean);
  }
  const args = argv as string[];
  if (args.length === 0 || !args[0]) throw new Error('must name a program');
  for (const arg of args) {
    for (const [, name] of arg.matchAll(PLACEHOLDER)) {
      if (!PLACEHOLDERS.includes(name as Placeholder)) {
        throw new Error(`uses an unknown placeholder {${name}}; known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(' ')}`);
      }
    }
  }
  if (!args.some((a) => a.includes('{input}'))) throw new Error('must pass the file to the program with {input}');
  return args;
}

export function expandCommand(template: readonly string[], values: Record<Placeholder, string>): string[] {
  return template.map((arg) => arg.replace(PLACEHOLDER, (whole, name: string) => values[name as Placeholder] ?? whole));
}

export interface CommandRun {
  exitCode: number | null;
  /** The signal that ended it (SIGKILL after a timeout). */
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  stdoutTail: string;
  stderrTail: string;
}

export interface RunOptions {
  argv: readonly string[];
  cwd: string;
  timeoutMs: number;
  /** Aborting kills the command, like the timeout does. */
  signal?: AbortSignal;
  /** Extra environment on top of a minimal one (PATH, HOME, LANG, TMPDIR). */
  env?: Record<string, string>;
}

/** Keeps the last `TAIL_BYTES` of a stream: enough to see why a tool failed, never a memory hog. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  private dropped = false;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= TAIL_BYTES) {
      this.size -= this.chunks.shift()!.length;
      this.dropped = true;
    }
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    const cut = all.length > TAIL_BYTES;
    const text = all.subarray(Math.max(0, all.length - TAIL_BYTES)).toString('utf8');
    return (this.dropped || cut ? '…' : '') + text;
  }
}

/**
 * Runs the command in its own process group, so a timeout or abort kills everything it started
 * (a shell script's children included), not just the first process. Resolves with how it ended
 * — a non-zero exit is the caller's to judge — and rejects only when it cannot start.
 */
export function runCommand(options: RunOptions): Promise<CommandRun> {
  const [program, ...args] = options.argv;
  if (!program) return Promise.reject(new Error('empty command'));
  const started = performance.now();
  return new Promise((resolve, reject) => {
    // The job's own environment holds Redis passwords and the webhook secret: the tool gets
    // only what programs commonly need.
    const base: Record<string, string> = {};
    for (const name of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'TZ']) {
      const value = process.env[name];
      if (value !== undefined) base[name] = value;
    }
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: { ...base, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      shell: false,
    });
    const stdout = new Tail();
    const stderr = new Tail();
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    let timedOut = false;
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    const onAbort = () => killGroup();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) killGroup();
    let settled = false;
    const done = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      const first = !settled;
      settled = true;
      return first;
    };
    child.once('error', (err) => {
      if (done()) reject(err);
    });
    // Whatever the program left running in the background would hold its output pipes open
    // (and outlive the task): the run is over when the program exits.
    child.once('exit', killGroup);
    // 'close' (not 'exit') so the output tails are complete.
    child.once('close', (code, signal) => {
      if (!done()) return;
      resolve({
        exitCode: code,
        signal,
        timedOut,
        durationMs: Math.round(performance.now() - started),
        stdoutTail: stdout.text(),
        stderrTail: stderr.text(),
      });
    });
  });
}
