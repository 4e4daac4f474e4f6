// GET /tasks/:id/files/:name — the output files an audio task's AUDIO_PROCESSOR_CMD wrote,
// read from AUDIO_WORK_DIR (shared with job: same machine or one volume). Behind API auth.
// Names are plain file names only, and the file's real path must be exactly where the layout
// says it is, so neither `..` nor a symlink a tool left behind reaches anything else.
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { isSafeOutputName, taskPaths } from '../../audio/paths.ts';
import type { TaskQueue } from '../../queue/task-queue.ts';
import { ApiError } from '../errors.ts';
import { taskParamsSchema } from '../schemas.ts';

export interface FileRoutesOptions {
  queue: TaskQueue;
  workDir: string;
}

const paramsSchema = taskParamsSchema.extend({
  name: z.string().refine(isSafeOutputName, {
    message: 'name must be a plain file name (letters, digits, . _ -; no path, no leading dot)',
  }),
});

// Served as downloads: a tool's output is never rendered as a page in the API's origin.
const CONTENT_TYPES: Record<string, string> = {
  wav: 'audio/wav',
  mp3: 'audio/mpeg',
  flac: 'audio/flac',
  ogg: 'audio/ogg',
  opus: 'audio/ogg',
  m4a: 'audio/mp4',
  aac: 'audio/aac',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

function contentType(name: string): string {
  const ext = /\.([A-Za-z0-9]+)$/.exec(name)?.[1]?.toLowerCase();
  return (ext && CONTENT_TYPES[ext]) || 'application/octet-stream';
}

export const fileRoutes: FastifyPluginAsyncZod<FileRoutesOptions> = async (app, options) => {
  app.get('/tasks/:id/files/:name', { onRequest: app.apiAuth, schema: { params: paramsSchema } }, async (request, reply) => {
    const { id, name } = request.params;
    if (!(await options.queue.get(id))) throw new ApiError('not_found', `task ${id} does not exist (or has expired)`);
    const missing = () => new ApiError('not_found', `task ${id} has no output file ${name}`);
    let root: string;
    try {
      root = await realpath(options.workDir);
    } catch {
      throw missing();
    }
    const expected = join(taskPaths(root, options.queue.keys.tasks.queue, id).files, name);
    const actual = await realpath(expected).catch(() => null);
    if (actual !== expected || !actual.startsWith(root + sep)) throw missing();
    // O_NOFOLLOW: a link swapped in after the check above is still refused.
    const file = await open(actual, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
    if (!file) throw missing();
    const info = await file.stat();
    if (!info.isFile()) {
      await file.close();
      throw missing();
    }
    return reply
      .header('content-type', contentType(name))
      .header('content-length', info.size)
      .header('content-disposition', `attachment; filename="${name}"`)
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'private, no-store')
      .send(file.createReadStream());
  });
};
