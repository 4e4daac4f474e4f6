import { describe, expect, it } from 'vitest';
import { coalesce } from '../../src/util/coalesce.ts';

describe('coalesce', () => {
  it('gives every caller a write that started after its call, and a burst costs two writes', async () => {
    const started: number[] = [];
    let value = 0;
    const releases: (() => void)[] = [];
    const write = coalesce(async () => {
      started.push(value);
      await new Promise<void>((r) => releases.push(r));
    });
    const first = write();
    value = 1;
    const burst = [write(), write(), write()];
    expect(started).toEqual([0]);
    releases.shift()!();
    await first;
    await new Promise((r) => setImmediate(r));
    // One more write for the whole burst, and it saw the state after the burst's calls.
    expect(started).toEqual([0, 1]);
    releases.shift()!();
    await Promise.all(burst);
    expect(started).toHaveLength(2);
  });

  it('runs again after a failed write, and the failure reaches its callers', async () => {
    let calls = 0;
    const write = coalesce(async () => {
      calls++;
      if (calls === 1) throw new Error('down');
    });
    await expect(write()).rejects.toThrow('down');
    await expect(write()).resolves.toBeUndefined();
    expect(calls).toBe(2);
  });
});
