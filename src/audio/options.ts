// The audio settings job and logic derive from the environment, in one place.
import type { Env } from '../config/schema.ts';
import { parseCommandTemplate } from './external-command.ts';

export interface AudioSettings {
  /** Root of the per-task directories (AUDIO_WORK_DIR); logic serves output files from it. */
  workDir: string;
  maxBytes: number;
  downloadTimeoutMs: number;
  maxRedirects: number;
  allowPrivate: boolean;
  /** AUDIO_PROCESSOR_CMD as arguments with placeholders, or null for analysis only. */
  command: string[] | null;
  commandTimeoutMs: number;
  /** Audio tasks one job process runs at once. */
  concurrency: number;
  /** Output files are removed this long after their task (0 = kept). */
  retentionSeconds: number;
}

export function audioSettingsFromEnv(env: Env): AudioSettings {
  return {
    workDir: env.AUDIO_WORK_DIR,
    maxBytes: env.AUDIO_MAX_BYTES,
    downloadTimeoutMs: env.AUDIO_DOWNLOAD_TIMEOUT_MS,
    maxRedirects: env.AUDIO_MAX_REDIRECTS,
    allowPrivate: env.AUDIO_ALLOW_PRIVATE,
    command: env.AUDIO_PROCESSOR_CMD ? parseCommandTemplate(env.AUDIO_PROCESSOR_CMD) : null,
    commandTimeoutMs: env.AUDIO_PROCESSOR_TIMEOUT_MS,
    concurrency: env.AUDIO_CONCURRENCY,
    retentionSeconds: env.TASK_RETENTION_SECONDS,
  };
}
