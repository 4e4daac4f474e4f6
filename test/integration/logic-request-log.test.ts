// What `pushline logic` logs per request, as users run it (the CLI, JSON lines on stdout): at
// LOG_LEVEL=info an accepted request writes nothing (two lines per request were about a third of
// logic's CPU per request), a refused one writes one line naming its request id, status and error
// code; at LOG_LEVEL=debug every request is logged, at debug level, as it arrives and completes.
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/local/redis-server.ts';
import { spawnPushline, type Proc } from '../helpers/processes.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { authHeader } from '../helpers/logic.ts';

const shared = useTestRedis();
const started: Proc[] = [];

afterAll(async () => {
  for (const p of started) p.child.kill('SIGTERM');
  await Promise.all(started.map((p) => p.exited));
});

async function startLogic(level: string): Promise<{ proc: Proc; url: string }> {
  const port = await freePort();
  const proc = spawnPushline(['logic'], {
    REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port), REDIS_KEY_PREFIX: uniquePrefix(),
    PUSHLINE_DEV: 'true', LOG_LEVEL: level, LOGIC_HOST: '127.0.0.1', LOGIC_PORT: String(port),
  });
  started.push(proc);
  await waitFor(() => proc.output().includes('logic listening on'), 'logic listening', 30_000);
  return { proc, url: `http://127.0.0.1:${port}` };
}

const post = (url: string, body: unknown, requestId: string) =>
  fetch(`${url}/logic/send`, {
    method: 'POST',
    headers: { authorization: authHeader, 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify(body),
  });

const linesOf = (proc: Proc, requestId: string) =>
  proc
    .output()
    .split('\n')
    .filter((line) => line.includes(requestId))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('logic request logs', () => {
  it('at info: nothing for an accepted request, one line for a refused one', async () => {
    const { proc, url } = await startLogic('info');
    const ok = await post(url, { roomId: 'video_123', userId: 'u1', messages: [{ content: 'hi' }] }, 'accepted-req-1');
    expect(ok.status).toBe(202);
    const bad = await post(url, { roomId: 'video_123', userId: 'u1', messages: [], priority: 9 }, 'refused-req-1');
    expect(bad.status).toBe(400);
    const refused = await waitFor(() => linesOf(proc, 'refused-req-1').length > 0 && linesOf(proc, 'refused-req-1'), 'the refused request logged');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: 30, reqId: 'refused-req-1', method: 'POST', url: '/logic/send', status: 400, code: 'validation_failed' });
    expect(String(refused[0]!.msg)).toContain('priority');
    // The accepted request was answered before the refused one was sent; its lines would be there.
    expect(linesOf(proc, 'accepted-req-1')).toEqual([]);
    // A body of many unknown keys: the caller gets every name, the log line only the start.
    const keys = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`unknown_field_${i}`, 1]));
    const flood = await post(url, { roomId: 'video_123', userId: 'u1', messages: [{ content: 'hi' }], ...keys }, 'refused-req-2');
    expect(flood.status).toBe(400);
    expect(((await flood.json()) as { message: string }).message).toContain('unknown_field_1999');
    const [line] = await waitFor(() => linesOf(proc, 'refused-req-2').length > 0 && linesOf(proc, 'refused-req-2'), 'the flood logged');
    expect(line).toMatchObject({ status: 400, code: 'validation_failed' });
    expect(String(line!.msg).length).toBeLessThanOrEqual(501);
  });

  it('at debug: every request as it arrives and as it completes', async () => {
    const { proc, url } = await startLogic('debug');
    const ok = await post(url, { roomId: 'video_123', userId: 'u1', messages: [{ content: 'hi' }] }, 'debug-req-1');
    expect(ok.status).toBe(202);
    const lines = await waitFor(() => linesOf(proc, 'debug-req-1').length >= 2 && linesOf(proc, 'debug-req-1'), 'both request lines');
    expect(lines.map((l) => [l.level, l.msg])).toEqual([[20, 'incoming request'], [20, 'request completed']]);
    expect(lines[1]).toMatchObject({ res: { statusCode: 202 } });
  });
});
