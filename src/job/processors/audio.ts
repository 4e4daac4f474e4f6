// `audio`: download the task's `audio` URL into its own directory, analyse the bytes with
// music-metadata, and — when AUDIO_PROCESSOR_CMD is set — run that tool on the file and keep
// what it writes to {output_dir} for logic to serve (GET /tasks/:id/files/:name).
// Bad input (not audio, truncated, too large, 4xx, refused target, a failing tool) fails the
// task for good; network trouble, timeouts and 5xx are retried with the queue's backoff.
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { analyseFile, BadAudioError, extensionFor, type AudioAnalysis } from '../../audio/analyse.ts';
import { DownloadError, downloadToFile, type Downloaded } from '../../audio/download.ts';
import { expandCommand, runCommand, type CommandRun } from '../../audio/external-command.ts';
import type { AudioSettings } from '../../audio/options.ts';
import { isSafeOutputName, queueDir, taskPaths } from '../../audio/paths.ts';
import { sweepTaskDirs } from '../../audio/sweep.ts';
import { checkTargetUrl } from '../../net/ssrf.ts';
import { Limit } from '../../util/limit.ts';
import { PermanentError, type Processor, type TaskContext } from '../processor.ts';

export interface AudioProcessorOptions extends AudioSettings {
  /** The task queue's Redis key: one directory level, shared with logic (src/audio/paths.ts). */
  queueKey: string;
  /** SSRF-guarded (createGuardedAgent with AUDIO_ALLOW_PRIVATE). */
  dispatcher: Dispatcher;
}

export interface OutputFile {
  name: string;
  size: number;
  /** Path on the logic API (behind its auth). */
  url: string;
}

export interface AudioResult extends AudioAnalysis {
  source: { url: string; final_url: string; redirects: number; content_type: string | null; size: number; sha256: string };
  command?: {
    argv: string[];
    exit_code: number | null;
    signal: string | null;
    duration_ms: number;
    stdout_tail: string;
    stderr_tail: string;
  };
  files?: OutputFile[];
  /** Entries of {output_dir} that are not served: subdirectories, links, unsafe names. */
  ignored_outputs?: string[];
}

const MAX_OUTPUTS = 1000;
const ERROR_TAIL_CHARS = 600;
const SWEEP_EVERY_MS = 10 * 60_000;

/** The extension the tool sees: the detected format's, else the URL's when it is a plain one. */
function toolExtension(analysis: AudioAnalysis, url: URL): string | null {
  return extensionFor(analysis.format) ?? /\.([A-Za-z0-9]{1,8})$/.exec(url.pathname)?.[1]?.toLowerCase() ?? null;
}

async function listOutputs(dir: string, taskId: string): Promise<{ files: OutputFile[]; ignored: string[] }> {
  const files: OutputFile[] = [];
  const ignored: string[] = [];
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const entry of entries) {
    // Dirent types come from lstat: a symlink is never isFile(), so nothing outside is served.
    if (!entry.isFile() || !isSafeOutputName(entry.name) || files.length >= MAX_OUTPUTS) {
      ignored.push(entry.name);
      continue;
    }
    const { size } = await stat(join(dir, entry.name));
    files.push({ name: entry.name, size, url: `/tasks/${taskId}/files/${encodeURIComponent(entry.name)}` });
  }
  return { files, ignored };
}

function tail(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > ERROR_TAIL_CHARS ? `…${trimmed.slice(-ERROR_TAIL_CHARS)}` : trimmed;
}

function commandFailure(run: CommandRun, timeoutMs: number): string | null {
  const said = tail(run.stderrTail) || tail(run.stdoutTail);
  const output = said ? `; output: ${said}` : '';
  if (run.timedOut) return `AUDIO_PROCESSOR_CMD timed out after ${timeoutMs} ms (AUDIO_PROCESSOR_TIMEOUT_MS) and was killed${output}`;
  if (run.exitCode !== 0) {
    const how = run.exitCode === null ? `was killed by ${run.signal}` : `exited with code ${run.exitCode}`;
    return `AUDIO_PROCESSOR_CMD ${how}${output}`;
  }
  return null;
}

export function createAudioProcessor(options: AudioProcessorOptions): Processor {
  const limit = new Limit(options.concurrency);
  const root = queueDir(options.workDir, options.queueKey);
  // Task directories in use by this process, never swept.
  const active = new Set<string>();
  let lastSweep = 0;

  function sweepNowAndThen(ctx: TaskContext): void {
    if (options.retentionSeconds <= 0 || Date.now() - lastSweep < SWEEP_EVERY_MS) return;
    lastSweep = Date.now();
    sweepTaskDirs(root, Date.now() - options.retentionSeconds * 1000, active).then(
      (removed) => removed > 0 && ctx.log.info(`removed ${removed} expired audio task directories from ${root}`),
      (err: unknown) => ctx.log.warn({ err: String(err) }, `could not sweep ${root}`),
    );
  }

  async function download(ctx: TaskContext, url: URL, dest: string): Promise<Downloaded> {
    try {
      return await downloadToFile({
        url: url.href,
        dest,
        maxBytes: options.maxBytes,
        timeoutMs: options.downloadTimeoutMs,
        maxRedirects: options.maxRedirects,
        dispatcher: options.dispatcher,
        signal: ctx.signal,
      });
    } catch (err) {
      if (err instanceof DownloadError && !err.retryable) throw new PermanentError(err.message);
      throw err;
    }
  }

  async function analyse(path: string, size: number): Promise<AudioAnalysis> {
    try {
      return await analyseFile(path, size);
    } catch (err) {
      if (err instanceof BadAudioError) throw new PermanentError(err.message);
      throw err;
    }
  }

  async function runTool(ctx: TaskContext, input: string, outputDir: string, result: AudioResult): Promise<void> {
    const argv = expandCommand(options.command!, { input, output_dir: outputDir, task_id: ctx.id });
    let run: CommandRun;
    try {
      run = await runCommand({
        argv,
        cwd: outputDir,
        timeoutMs: options.commandTimeoutMs,
        signal: ctx.signal,
        env: { PUSHLINE_TASK_ID: ctx.id, PUSHLINE_INPUT: input, PUSHLINE_OUTPUT_DIR: outputDir },
      });
    } catch (err) {
      // Not found, not executable: the configuration is wrong, no retry of this task fixes it.
      throw new PermanentError(`AUDIO_PROCESSOR_CMD could not start ${JSON.stringify(argv[0])}: ${(err as Error).message}`);
    }
    ctx.signal.throwIfAborted();
    const { files, ignored } = await listOutputs(outputDir, ctx.id);
    result.command = {
      argv,
      exit_code: run.exitCode,
      signal: run.signal,
      duration_ms: run.durationMs,
      stdout_tail: run.stdoutTail,
      stderr_tail: run.stderrTail,
    };
    result.files = files;
    if (ignored.length > 0) result.ignored_outputs = ignored;
    const failure = commandFailure(run, options.commandTimeoutMs);
    if (failure) throw new PermanentError(failure);
    ctx.log.info({ exitCode: run.exitCode, files: files.length, ms: run.durationMs }, `AUDIO_PROCESSOR_CMD finished for task ${ctx.id}`);
  }

  async function run(ctx: TaskContext, url: URL): Promise<AudioResult> {
    const paths = taskPaths(options.workDir, options.queueKey, ctx.id);
    active.add(ctx.id);
    let keepFiles = false;
    try {
      // A retry starts clean: whatever an earlier, interrupted attempt left is gone.
      await rm(paths.dir, { recursive: true, force: true });
      await mkdir(options.command ? paths.files : paths.dir, { recursive: true, mode: 0o750 });
      // No extension while analysing: the content alone decides what the file is.
      let input = join(paths.dir, 'input');
      const downloaded = await download(ctx, url, input);
      ctx.log.info({ bytes: downloaded.bytes, redirects: downloaded.redirects }, `downloaded audio for task ${ctx.id}`);
      ctx.progress(options.command ? 0.3 : 0.5, 'downloaded');
      const analysis = await analyse(input, downloaded.bytes);
      const result: AudioResult = {
        source: {
          url: downloaded.url,
          final_url: downloaded.finalUrl,
          redirects: downloaded.redirects,
          content_type: downloaded.contentType,
          size: downloaded.bytes,
          sha256: downloaded.sha256,
        },
        ...analysis,
      };
      if (options.command) {
        const ext = toolExtension(analysis, url);
        if (ext) await rename(input, (input = `${input}.${ext}`));
        ctx.progress(0.4, 'analysed; running AUDIO_PROCESSOR_CMD');
        await runTool(ctx, input, paths.files, result);
        keepFiles = (result.files?.length ?? 0) > 0;
        await rm(input, { force: true });
      }
      return result;
    } finally {
      active.delete(ctx.id);
      if (!keepFiles) await rm(paths.dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  return {
    type: 'audio',
    async process(ctx) {
      const raw = ctx.hash.audio;
      if (!raw) throw new PermanentError('audio task without an audio URL (the "audio" field of POST /generate)');
      // Logic checked it already; a task written by other means gets the same check.
      const checked = checkTargetUrl(raw);
      if (!checked.ok) throw new PermanentError(`audio URL ${checked.reason}`);
      sweepNowAndThen(ctx);
      return limit.run(() => run(ctx, checked.url), ctx.signal);
    },
  };
}
