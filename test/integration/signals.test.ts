// A SIGTERM at any moment of a process's life is a clean stop (exit 0), including while the
// code is still loading or the process is still connecting: orchestrators send it whenever.
import { describe, expect, it } from 'vitest';
import { spawnPushline } from '../helpers/processes.ts';
import { useTestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const shared = useTestRedis();

describe('SIGTERM', () => {
  it.each([
    // Node itself needs a moment before any of our code runs; loading ours takes over a second.
    ['while loading', () => new Promise((r) => setTimeout(r, 800))],
    ['once consuming', (p: ReturnType<typeof spawnPushline>) => waitFor(() => p.output().includes('Webhook sender started'), 'job started', 30_000)],
  ])('%s: the job exits 0', async (_when, ready) => {
    const job = spawnPushline(['job'], { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(shared.redis.port), PUSHLINE_DEV: 'true', JOB_METRICS_PORT: '0', LOG_LEVEL: 'info' });
    await ready(job);
    job.child.kill('SIGTERM');
    expect(await job.exited).toBe(0);
  });
});
