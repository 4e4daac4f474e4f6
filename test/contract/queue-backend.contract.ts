// The QueueBackend contract, run against every backend available (redis and bullmq always,
// kafka when KAFKA_BOOTSTRAP_SERVERS is set): what logic and job rely on, whatever carries tasks.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnsupportedError, type Consumption, type QueueBackend } from '../../src/queue/backend.ts';
import type { Handler, Verdict } from '../../src/queue/consumer.ts';
import { TASK_ID_PATTERN } from '../../src/queue/keys.ts';
import type { ClaimedTask } from '../../src/queue/task.ts';
import type { TaskQueue } from '../../src/queue/task-queue.ts';
import { routingKeys } from '../../src/routing/keys.ts';
import { silentLogger } from '../../src/util/log.ts';
import { waitFor } from '../helpers/wait.ts';

export interface ContractSubject {
  backend: QueueBackend;
  queue: TaskQueue;
  close(): Promise<void>;
}

const options = { concurrency: 4, maxAttempts: 3, backoffMs: 20, log: silentLogger };

export function queueBackendContract(name: string, make: () => Promise<ContractSubject>): void {
  describe(`QueueBackend contract: ${name}`, () => {
    let subject: ContractSubject;
    const consumptions: Consumption[] = [];
    beforeAll(async () => {
      subject = await make();
    });
    afterEach(async () => {
      for (const c of consumptions.splice(0)) await c.stop(1000);
    });
    afterAll(async () => {
      await subject?.close();
    });

    const consume = async (handler: Handler, concurrency = options.concurrency) => {
      const c = await subject.backend.consume(handler, { ...options, concurrency });
      consumptions.push(c);
      return c;
    };
    const finished = (id: string) => waitFor(async () => {
      const h = await subject.queue.get(id);
      return h && ['completed', 'failed', 'dead'].includes(h.status ?? '') ? h : null;
    }, `task ${id} finished`, 30_000);

    it('delivers what was enqueued, under the id enqueue returned, and records the result', async () => {
      const seen: ClaimedTask[] = [];
      const { id } = await subject.backend.enqueueOne({ type: 'echo', priority: 4, payload: '{"hello":"world"}', fields: { user_id: 'ann', request_id: 'r-1' } });
      expect(id).toMatch(TASK_ID_PATTERN);
      await consume(async (task) => {
        seen.push(task);
        return { outcome: 'completed', fields: { result: task.hash.payload! } };
      });
      const hash = await finished(id);
      expect(hash).toMatchObject({ id, type: 'echo', priority: '4', status: 'completed', result: '{"hello":"world"}', user_id: 'ann', request_id: 'r-1' });
      expect(seen.filter((t) => t.id === id)).toHaveLength(1);
      expect(seen[0]).toMatchObject({ attempt: 1, hash: { payload: '{"hello":"world"}' } });
    });

    it('runs higher priorities first', async (ctx) => {
      if (!subject.backend.supportsPriority) ctx.skip(`${name} has no priorities`);
      const ids: string[] = [];
      for (const priority of [1, 3, 5, 2, 4]) ids.push((await subject.backend.enqueueOne({ type: 'echo', priority, payload: String(priority) })).id);
      const order: string[] = [];
      await consume(async (task) => {
        order.push(task.hash.priority!);
        return { outcome: 'completed', fields: { result: 'null' } };
      }, 1);
      await waitFor(() => order.length === 5, 'all five ran');
      expect(order).toEqual(['5', '4', '3', '2', '1']);
    });

    it('retries a failed attempt and completes it', async () => {
      const { id } = await subject.backend.enqueueOne({ type: 'echo', priority: 3, payload: 'flaky' });
      const attempts: number[] = [];
      await consume(async (task): Promise<Verdict> => {
        if (task.id !== id) return { outcome: 'completed', fields: {} };
        attempts.push(task.attempt);
        return task.attempt === 1 ? { outcome: 'retry', delayMs: 20, fields: { error: 'first try fails' } } : { outcome: 'completed', fields: { result: '"ok"' } };
      });
      expect(await finished(id)).toMatchObject({ status: 'completed', attempts: '2', result: '"ok"' });
      expect(attempts).toEqual([1, 2]);
    });

    it('dead-letters a task whose attempts run out, and fails one for good at once', async () => {
      const dead = (await subject.backend.enqueueOne({ type: 'echo', priority: 3, payload: 'always-fails' })).id;
      const failed = (await subject.backend.enqueueOne({ type: 'echo', priority: 3, payload: 'bad-input' })).id;
      const runs = new Map<string, number>();
      await consume(async (task): Promise<Verdict> => {
        runs.set(task.id, (runs.get(task.id) ?? 0) + 1);
        if (task.id === failed) return { outcome: 'failed', fields: { error: 'bad input' } };
        if (task.id === dead) return task.attempt >= options.maxAttempts ? { outcome: 'dead', fields: { error: 'still failing' } } : { outcome: 'retry', delayMs: 10, fields: { error: 'still failing' } };
        return { outcome: 'completed', fields: {} };
      });
      expect(await finished(dead)).toMatchObject({ status: 'dead', error: 'still failing', attempts: String(options.maxAttempts) });
      expect(await finished(failed)).toMatchObject({ status: 'failed', error: 'bad input' });
      expect(runs.get(failed)).toBe(1);
      expect(runs.get(dead)).toBe(options.maxAttempts);
    });

    it('never runs more tasks at once than its concurrency', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) ids.push((await subject.backend.enqueueOne({ type: 'echo', priority: 3, payload: `c${i}` })).id);
      let running = 0;
      let most = 0;
      await consume(async () => {
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 50));
        running--;
        return { outcome: 'completed', fields: {} };
      }, 2);
      for (const id of ids) await finished(id);
      expect(most).toBe(2);
    });

    it('loses no task when a consumer stops in the middle of it: another consumer finishes it', async () => {
      const { id } = await subject.backend.enqueueOne({ type: 'echo', priority: 3, payload: 'interrupted' });
      let started = false;
      const first = await consume(async (task, control) => {
        if (task.id !== id) return { outcome: 'completed', fields: {} };
        started = true;
        // Works until told to stop, then gives the task back.
        await new Promise((resolve) => control.signal.addEventListener('abort', resolve));
        return { outcome: 'release' };
      });
      await waitFor(() => started, 'the first consumer took it');
      await first.stop(100);
      consumptions.splice(consumptions.indexOf(first), 1);
      const runs: number[] = [];
      await consume(async (task) => {
        if (task.id === id) runs.push(task.attempt);
        return { outcome: 'completed', fields: { result: '"finished elsewhere"' } };
      });
      expect(await finished(id)).toMatchObject({ status: 'completed', result: '"finished elsewhere"' });
      // Handed back, not failed: the attempt it was on is not spent.
      expect(runs).toEqual([1]);
    });

    it('numbers a room’s messages from the room seq counter the Redis engine uses, in the queue’s slot', async () => {
      const seqName = routingKeys(subject.queue.keys.prefix, subject.queue.keys.cluster).roomSeq('hall');
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await subject.backend.enqueueOne({ type: 'echo', priority: 3, payload: `m${i}`, sequenceKey: seqName })).id);
      for (const id of ids) expect(id).toMatch(TASK_ID_PATTERN);
      await consume(async () => ({ outcome: 'completed', fields: {} }));
      const seqs = await Promise.all(ids.map(async (id) => (await finished(id)).seq));
      expect(seqs).toEqual(['1', '2', '3']);
      const counter = subject.queue.keys.ofName(seqName).sequence(seqName);
      expect(await subject.queue.redis.get(counter)).toBe('3');
    });

    it('says clearly what it cannot do', async () => {
      const task = { type: 'echo', priority: 3, payload: 'x', idempotency: { key: 'k-1', fingerprint: 'f' } };
      if (subject.backend.supportsIdempotency) {
        const a = await subject.backend.enqueueOne(task);
        const b = await subject.backend.enqueueOne(task);
        expect([a.outcome, b.outcome, b.id]).toEqual(['created', 'existing', a.id]);
      } else {
        await expect(subject.backend.enqueueOne(task)).rejects.toThrow(BackendUnsupportedError);
        await expect(subject.backend.enqueueOne(task)).rejects.toThrow(/Idempotency-Key needs QUEUE_BACKEND=redis/);
      }
    });
  });
}
