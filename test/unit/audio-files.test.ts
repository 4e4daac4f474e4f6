// Task directories and output names: the layout job and logic share, the names that may be
// served, the sweep of expired directories, and the per-process limit on audio tasks.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isSafeOutputName, queueDir, taskPaths } from '../../src/audio/paths.ts';
import { sweepTaskDirs } from '../../src/audio/sweep.ts';
import { Limit } from '../../src/util/limit.ts';

const root = mkdtempSync(join(tmpdir(), 'pushline-paths-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('taskPaths', () => {
  it('puts each queue (prefix included) in its own directory, encoded as one safe segment', () => {
    expect(taskPaths('/w', 'uvr_tasks', '000000000042')).toEqual({ dir: '/w/uvr_tasks/000000000042', files: '/w/uvr_tasks/000000000042/files' });
    expect(queueDir('/w', 'tenant:a.b{x}')).toBe('/w/tenant%3aa%2eb%7bx%7d');
    expect(queueDir('/w', '..')).toBe('/w/%2e%2e');
  });

  it('refuses anything but a task id', () => {
    for (const id of ['../x', '42', '000000000042/..', '']) expect(() => taskPaths('/w', 'q', id)).toThrow(/not a task id/);
  });
});

describe('isSafeOutputName', () => {
  it.each(['out.wav', 'summary.json', 'a_b-c.1.mp3', '0'])('serves %s', (name) => expect(isSafeOutputName(name)).toBe(true));
  it.each(['', '.', '..', '.env', '../x', 'a/b', 'a\\b', 'a..b', 'x y.wav', '-rf', 'é.wav', 'a'.repeat(129)])('refuses %j', (name) =>
    expect(isSafeOutputName(name)).toBe(false),
  );
});

describe('sweepTaskDirs', () => {
  it('removes task directories older than the cut-off, except those in use and anything else', async () => {
    const dir = join(root, 'q');
    for (const name of ['000000000001', '000000000002', '000000000003', 'not-a-task']) mkdirSync(join(dir, name, 'files'), { recursive: true });
    const old = new Date(Date.now() - 3600_000);
    for (const name of ['000000000001', '000000000003', 'not-a-task']) utimesSync(join(dir, name), old, old);
    const removed = await sweepTaskDirs(dir, Date.now() - 60_000, new Set(['000000000003']));
    expect(removed).toBe(1);
    expect(existsSync(join(dir, '000000000001'))).toBe(false);
    expect(existsSync(join(dir, '000000000002'))).toBe(true);
    expect(existsSync(join(dir, '000000000003'))).toBe(true);
    expect(existsSync(join(dir, 'not-a-task'))).toBe(true);
    expect(await sweepTaskDirs(join(root, 'missing'), Date.now())).toBe(0);
  });
});

describe('Limit', () => {
  it('runs at most max at once, in arrival order, and drops a waiter whose signal aborts', async () => {
    const limit = new Limit(2);
    const started: number[] = [];
    const gates: Array<() => void> = [];
    const task = (n: number) => () =>
      new Promise<number>((resolve) => {
        started.push(n);
        gates.push(() => resolve(n));
      });
    const controller = new AbortController();
    const runs = [limit.run(task(1)), limit.run(task(2)), limit.run(task(3), controller.signal), limit.run(task(4))];
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2]);
    controller.abort(new Error('gone'));
    await expect(runs[2]).rejects.toThrow('gone');
    gates.shift()!();
    await runs[0];
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2, 4]);
    while (gates.length) gates.shift()!();
    expect(await Promise.all([runs[1], runs[3]])).toEqual([2, 4]);
    expect(limit.running).toBe(0);
  });
});
