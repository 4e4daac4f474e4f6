// Output files live as long as their task: task directories older than the retention period
// (TASK_RETENTION_SECONDS, the same clock as the task hashes) are removed. Each job sweeps its
// queue's directory now and then; several jobs sweeping one shared volume is harmless.
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TASK_ID_PATTERN } from '../queue/keys.ts';

/** Removes task directories last modified before `olderThanMs`, except `skip`; returns how many. */
export async function sweepTaskDirs(dir: string, olderThanMs: number, skip: ReadonlySet<string> = new Set()): Promise<number> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let removed = 0;
  for (const entry of entries) {
    if (!entry.isDirectory() || !TASK_ID_PATTERN.test(entry.name) || skip.has(entry.name)) continue;
    const path = join(dir, entry.name);
    const info = await stat(path).catch(() => null);
    if (!info || info.mtimeMs >= olderThanMs) continue;
    await rm(path, { recursive: true, force: true });
    removed++;
  }
  return removed;
}
