// Where audio tasks keep their files, named in one place because two processes rely on it: job
// writes `<work dir>/<queue>/<task id>/`, logic serves `.../files/<name>` from the same tree
// (same machine, or one volume mounted by both). The queue's Redis key (prefix included) is a
// directory level so deployments — and tests — that share a work dir but not a queue never
// collide on task ids, which are per-queue counters.
import { join } from 'node:path';
import { TASK_ID_PATTERN } from '../queue/keys.ts';

/** Output file names that can be served: no separators, no leading dot, nothing to escape. */
export const OUTPUT_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export function isSafeOutputName(name: string): boolean {
  return OUTPUT_NAME_PATTERN.test(name) && !name.includes('..');
}

/** A key name as one path segment: anything but [A-Za-z0-9_-] is %-encoded, so no dots, no slashes. */
function segment(keyName: string): string {
  return keyName.replace(/[^A-Za-z0-9_-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export interface TaskPaths {
  /** The task's own directory; removed when nothing in it is to be kept. */
  dir: string;
  /** Outputs of AUDIO_PROCESSOR_CMD (its {output_dir}), served by logic. */
  files: string;
}

export function taskPaths(workDir: string, queueKey: string, taskId: string): TaskPaths {
  // Task ids come from Redis; still, nothing unexpected becomes part of a path.
  if (!TASK_ID_PATTERN.test(taskId)) throw new Error(`not a task id: ${JSON.stringify(taskId)}`);
  const dir = join(workDir, segment(queueKey), taskId);
  return { dir, files: join(dir, 'files') };
}

/** The queue's directory, holding one directory per task (the sweeper walks it). */
export function queueDir(workDir: string, queueKey: string): string {
  return join(workDir, segment(queueKey));
}
