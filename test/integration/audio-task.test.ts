// The audio task end to end, in process: the seed request through logic, a job runner with the
// audio processor, files from a local HTTP server (loopback), signed webhooks to a local
// receiver, and output files of AUDIO_PROCESSOR_CMD served back by logic behind its auth.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { taskPaths } from '../../src/audio/paths.ts';
import { createAudioProcessor, type AudioProcessorOptions } from '../../src/job/processors/audio.ts';
import { createGuardedAgent } from '../../src/net/ssrf.ts';
import { queueKeys } from '../../src/queue/keys.ts';
import { verifySignature } from '../../src/webhook/signature.ts';
import { flac, mp3, noise, wav } from '../helpers/audio.ts';
import { routes, startFileServer, type FileServer } from '../helpers/file-server.ts';
import { authHeader, testLogic } from '../helpers/logic.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { testRunner, WEBHOOK_SECRET } from '../helpers/runner.ts';
import { waitFor } from '../helpers/wait.ts';

const TOOL = fileURLToPath(new URL('../fixtures/audio-tool.mjs', import.meta.url));
const WAIT_MS = 45_000;

const shared = useTestRedis();
let files: FileServer;
let receiver: Receiver;
let workDir: string;
let dispatcher: Agent;
let guarded: Agent;
const open: { close(): Promise<void> }[] = [];

const sample = wav({ seconds: 2, sampleRate: 8000, channels: 1 });

beforeAll(async () => {
  files = await startFileServer();
  receiver = await startReceiver();
  workDir = mkdtempSync(join(tmpdir(), 'pushline-audio-test-'));
  dispatcher = createGuardedAgent({ allowPrivate: true });
  guarded = createGuardedAgent({ allowPrivate: false, allowSetting: 'AUDIO_ALLOW_PRIVATE' });
  files.file('/seed.wav', sample, 'audio/wav');
  files.file('/song.mp3', mp3(200, 'Seed song'), 'audio/mpeg');
  files.file('/take.flac', flac({ seconds: 1.5, sampleRate: 16_000, channels: 2 }), 'audio/flac');
  files.file('/noise.wav', noise(20_000), 'audio/wav');
  files.file('/page.html', Buffer.from('<!doctype html><title>404</title>'), 'text/html');
  files.file('/truncated.wav', sample.subarray(0, 5000), 'audio/wav');
  files.file('/huge.wav', wav({ seconds: 10, sampleRate: 8000 }), 'audio/wav');
  files.route('/huge-chunked.wav', routes.chunked(wav({ seconds: 10, sampleRate: 8000 })));
  files.route('/stall.wav', routes.stall(sample.subarray(0, 2000)));
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});
afterAll(async () => {
  await files.close();
  await receiver.close();
  await dispatcher.close();
  await guarded.close();
  rmSync(workDir, { recursive: true, force: true });
});

type Settings = Partial<Omit<AudioProcessorOptions, 'queueKey'>>;

/** logic and a job runner sharing one queue (key prefix) and one work dir. */
async function stack(settings: Settings = {}, maxAttempts = 3) {
  const keyPrefix = uniquePrefix();
  const keys = queueKeys({ keyPrefix });
  const processor = createAudioProcessor({
    workDir,
    maxBytes: 1024 * 1024,
    downloadTimeoutMs: 20_000,
    maxRedirects: 3,
    allowPrivate: true,
    command: null,
    commandTimeoutMs: 30_000,
    concurrency: 2,
    retentionSeconds: 3600,
    dispatcher,
    ...settings,
    queueKey: keys.tasks.queue,
  });
  const logic = await testLogic(shared.redis.port, { keyPrefix, audioWorkDir: workDir });
  const job = await testRunner(shared.redis.port, {
    keyPrefix,
    processors: [processor],
    taskPolicy: { maxAttempts, baseMs: 20, maxMs: 100 },
  });
  open.push(job, logic);
  await job.runner.start();

  async function submit(body: Record<string, unknown>): Promise<string> {
    const res = await logic.app.inject({
      method: 'POST', url: '/generate', headers: { authorization: authHeader, 'content-type': 'application/json' }, payload: body,
    });
    expect(res.statusCode).toBe(202);
    return res.json().task_id as string;
  }

  /** The seed request: audio, hook_url, priority — no type. Resolves with the signed webhook body. */
  async function run(path: string) {
    // Task ids restart in every queue: the hook path tells this stack's webhooks apart.
    const hookPath = `/hook/${keyPrefix.replace(':', '')}`;
    const id = await submit({ audio: path.startsWith('http') ? path : `${files.url}${path}`, hook_url: `${receiver.url}${hookPath}`, priority: 5 });
    const hook = await waitFor(
      () => receiver.received.find((r) => r.path === hookPath && JSON.parse(r.body).task_id === id),
      `webhook of task ${id}`,
      WAIT_MS,
    );
    expect(verifySignature(hook.body, hook.headers['x-pushline-signature'] as string, WEBHOOK_SECRET)).toBe(true);
    const webhook = JSON.parse(hook.body);
    const task = (await logic.app.inject({ method: 'GET', url: `/tasks/${id}`, headers: { authorization: authHeader } })).json();
    return { id, webhook, task };
  }

  const get = (url: string, authorization: string | null = authHeader) =>
    logic.app.inject({ method: 'GET', url, headers: authorization ? { authorization } : {} });

  return { logic, job, keys, submit, run, get, taskDir: (id: string) => taskPaths(workDir, keys.tasks.queue, id).dir };
}

describe('POST /generate with audio', () => {
  it('defaults the type to audio and refuses a bad or missing audio URL, naming the field', async () => {
    const s = await stack();
    const id = await s.submit({ audio: `${files.url}/seed.wav`, priority: 5 });
    expect(await s.logic.redis.hget(s.logic.keys.task(id), 'type')).toBe('audio');
    for (const body of [{ audio: 'ftp://example.com/a.wav' }, { audio: 'not a url' }, { type: 'audio' }, { type: 'audio', audio: 'http://u:p@example.com/a' }]) {
      const res = await s.logic.app.inject({
        method: 'POST', url: '/generate', headers: { authorization: authHeader, 'content-type': 'application/json' }, payload: body,
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().fields.map((f: { field: string }) => f.field)).toContain('audio');
      expect(res.json().message).toContain('audio');
    }
  });
});

describe('analysis', () => {
  it('completes the seed request for a WAV: format fields in the result and in the signed webhook', async () => {
    const s = await stack();
    const { id, webhook, task } = await s.run('/seed.wav');
    expect(webhook).toMatchObject({ task_id: id, status: 'completed', priority: 5, error: null, attempts: 1 });
    expect(task).toMatchObject({ type: 'audio', status: 'completed' });
    expect(task.result).toEqual(webhook.result);
    expect(task.result.format).toEqual({
      container: 'WAVE', codec: 'PCM', codec_profile: null, duration: 2, sample_rate: 8000, channels: 1,
      bits_per_sample: 16, bitrate: 128_000, lossless: true, samples: 16_000,
    });
    expect(task.result.source).toMatchObject({ url: `${files.url}/seed.wav`, size: sample.length, content_type: 'audio/wav', redirects: 0 });
    expect(task.result.source.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(task.result.files).toBeUndefined();
    // Without a command nothing is kept.
    expect(existsSync(s.taskDir(id))).toBe(false);
  });

  it('reads MP3 (with its title tag) and FLAC', async () => {
    const s = await stack();
    const song = await s.run('/song.mp3');
    expect(song.webhook.status).toBe('completed');
    expect(song.task.result.format).toMatchObject({ container: 'MPEG', codec: 'MPEG 1 Layer 3', sample_rate: 44_100, channels: 1, bitrate: 128_000, lossless: false });
    expect(song.task.result.tags).toEqual({ title: 'Seed song' });
    const take = await s.run('/take.flac');
    expect(take.task.result.format).toMatchObject({ container: 'FLAC', codec: 'FLAC', duration: 1.5, sample_rate: 16_000, channels: 2, lossless: true });
  });
});

describe('bad audio ends as a failed task with a clear error and a webhook', () => {
  it.each([
    ['random bytes', '/noise.wav', /^not an audio file: .*starts with bytes/],
    ['an HTML page', '/page.html', /^not an audio file: .*"<!doctype html>/],
    ['a truncated WAV', '/truncated.wav', /^truncated audio: the RIFF\/WAVE header declares 32044 bytes but the file has 5000$/],
    ['a body over the size limit (Content-Length)', '/huge.wav', /^audio is too large: the server announces .*AUDIO_MAX_BYTES/],
    ['a body over the size limit (streamed)', '/huge-chunked.wav', /^audio is too large: the body passed/],
    ['a 404', '/missing.wav', /answered 404 Not Found/],
  ])('%s', async (_what, path, error) => {
    const s = await stack({ maxBytes: 100_000 });
    const { webhook, task } = await s.run(path);
    expect(webhook).toMatchObject({ status: 'failed', attempts: 1, result: null });
    expect(webhook.error).toMatch(error);
    expect(task).toMatchObject({ status: 'failed', attempts: 1 });
    expect(existsSync(s.taskDir(task.task_id))).toBe(false);
  });

  it('retries a download that times out, then dead-letters it', async () => {
    const s = await stack({ downloadTimeoutMs: 300 }, 2);
    const stalled = await s.run('/stall.wav');
    expect(stalled.webhook).toMatchObject({ status: 'dead', attempts: 2 });
    expect(stalled.webhook.error).toMatch(/audio download timed out after 300 ms \(AUDIO_DOWNLOAD_TIMEOUT_MS\)/);
  });

  it('retries a source that cannot be reached, then dead-letters it; the same worker keeps working', async () => {
    const s = await stack({}, 2);
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const unreachable = await s.run(`http://127.0.0.1:${port}/a.wav`);
    expect(unreachable.webhook).toMatchObject({ status: 'dead', attempts: 2 });
    expect(unreachable.webhook.error).toMatch(/ECONNREFUSED/);
    expect((await s.run('/noise.wav')).webhook.status).toBe('failed');
    // The same runner still completes good work.
    expect((await s.run('/seed.wav')).webhook.status).toBe('completed');
  });

  it('refuses loopback audio URLs unless AUDIO_ALLOW_PRIVATE is on (SSRF)', async () => {
    const s = await stack({ dispatcher: guarded });
    const before = files.hits.length;
    const { webhook } = await s.run('/seed.wav');
    expect(webhook.status).toBe('failed');
    expect(webhook.error).toMatch(/refusing to connect to private or loopback address 127\.0\.0\.1.*AUDIO_ALLOW_PRIVATE=true/);
    expect(files.hits.length).toBe(before);
  });
});

describe('AUDIO_PROCESSOR_CMD', () => {
  const tool = (mode: string) => [process.execPath, TOOL, '{input}', '{output_dir}', mode];

  it('runs the tool, records its exit and output, and logic serves its files behind auth', async () => {
    const s = await stack({ command: tool('ok') });
    const { id, webhook, task } = await s.run('/seed.wav');
    expect(webhook.status).toBe('completed');
    const result = task.result;
    expect(result.format.sample_rate).toBe(8000);
    expect(result.command).toMatchObject({ exit_code: 0, signal: null });
    expect(result.command.stderr_tail).toContain(`audio-tool: processed ${sample.length} bytes`);
    expect(result.files).toEqual([
      { name: 'copy.wav', size: sample.length, url: `/tasks/${id}/files/copy.wav` },
      { name: 'summary.json', size: expect.any(Number), url: `/tasks/${id}/files/summary.json` },
    ]);

    const summary = await s.get(`/tasks/${id}/files/summary.json`);
    expect(summary.statusCode).toBe(200);
    expect(summary.headers['content-type']).toBe('application/json');
    expect(summary.headers['content-disposition']).toBe('attachment; filename="summary.json"');
    expect(summary.json()).toEqual({ bytes: sample.length, magic: 'RIFF', task: id });
    const copy = await s.get(`/tasks/${id}/files/copy.wav`);
    expect(copy.rawPayload.equals(sample)).toBe(true);
    expect(copy.headers['content-type']).toBe('audio/wav');

    expect((await s.get(`/tasks/${id}/files/summary.json`, null)).statusCode).toBe(401);
    expect((await s.get(`/tasks/${id}/files/summary.json`, `Basic ${Buffer.from('admin:nope').toString('base64')}`)).statusCode).toBe(401);
    // The downloaded input is not kept, so it cannot be fetched either.
    expect(readdirSync(s.taskDir(id)).sort()).toEqual(['files']);
  });

  it('refuses path traversal, hidden and missing names, and unknown tasks', async () => {
    const s = await stack({ command: tool('ok') });
    const { id } = await s.run('/seed.wav');
    for (const name of ['..%2F..%2F..%2Fetc%2Fpasswd', '..%2F', '.hidden', '%2Fetc%2Fpasswd', 'a%5Cb']) {
      const res = await s.get(`/tasks/${id}/files/${name}`);
      expect(res.statusCode, name).toBe(400);
      expect(res.json().fields[0].field).toBe('name');
    }
    // Dot segments never reach the route: the router answers 404 before any file is looked at.
    for (const path of [`/tasks/${id}/files/../../../../etc/passwd`, `/tasks/${id}/files/..`, `/tasks/${id}/files/%2E%2E`]) {
      expect((await s.get(path)).statusCode, path).toBe(404);
    }
    const missing = await s.get(`/tasks/${id}/files/nothing.wav`);
    expect(missing.statusCode).toBe(404);
    expect(missing.json().message).toBe(`task ${id} has no output file nothing.wav`);
    expect((await s.get(`/tasks/999999999999/files/summary.json`)).statusCode).toBe(404);
  });

  it('serves neither symlinks nor subdirectories a tool leaves behind', async () => {
    const s = await stack({ command: tool('sneaky') });
    const { id, task } = await s.run('/seed.wav');
    expect(task.result.files.map((f: { name: string }) => f.name)).toEqual(['copy.wav', 'summary.json']);
    expect(task.result.ignored_outputs).toEqual(['leak.txt', 'sub']);
    expect((await s.get(`/tasks/${id}/files/leak.txt`)).statusCode).toBe(404);
    expect((await s.get(`/tasks/${id}/files/sub`)).statusCode).toBe(404);
  });

  it('fails the task for good when the tool exits non-zero, with its stderr in the error', async () => {
    const s = await stack({ command: tool('fail') });
    const { id, webhook } = await s.run('/seed.wav');
    expect(webhook).toMatchObject({ status: 'failed', attempts: 1 });
    expect(webhook.error).toBe('AUDIO_PROCESSOR_CMD exited with code 3; output: audio-tool: cannot decode this stream');
    expect(existsSync(s.taskDir(id))).toBe(false);
  });

  it('kills a tool that runs past AUDIO_PROCESSOR_TIMEOUT_MS and fails the task', async () => {
    const s = await stack({ command: tool('hang'), commandTimeoutMs: 500 });
    const { webhook } = await s.run('/seed.wav');
    expect(webhook.status).toBe('failed');
    expect(webhook.error).toMatch(/^AUDIO_PROCESSOR_CMD timed out after 500 ms \(AUDIO_PROCESSOR_TIMEOUT_MS\) and was killed/);
  });

  it('does not run the tool on bytes that are not audio', async () => {
    const s = await stack({ command: tool('ok') });
    const { webhook } = await s.run('/noise.wav');
    expect(webhook.status).toBe('failed');
    expect(webhook.error).toMatch(/^not an audio file/);
    expect(webhook.result).toBeNull();
  });
});
