// Pipelines that work on one Redis and on a Redis Cluster alike. A cluster pipeline must stay in
// one slot (ioredis refuses it otherwise: "All keys in the pipeline should belong to the same
// slots allocation group"), so on a cluster the steps are grouped by their key's hash slot (the
// hash tag decides it, as in Redis) and each group goes as its own pipeline, all in parallel:
// one round trip in wall time either way.
import type { ChainableCommander, Redis } from 'ioredis';

export interface Step {
  /** A key every command of the step touches; on a cluster the step is sent to its slot. */
  key: string;
  /** Adds the step's commands (one or more) to the pipeline. */
  add(pipeline: ChainableCommander): void;
}

export function isCluster(redis: Redis): boolean {
  return (redis as { isCluster?: boolean }).isCluster === true;
}

/** What decides a key's slot: the first non-empty `{…}` in it, else the whole key (Redis' rule). */
export function slotPart(key: string): string {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return key.slice(open + 1, close);
  }
  return key;
}

/** Runs the steps and returns each step's replies, in step order; throws the first error. */
export async function perSlot(redis: Redis, steps: readonly Step[]): Promise<unknown[][]> {
  if (steps.length === 0) return [];
  const cluster = isCluster(redis);
  const groups = new Map<string, number[]>();
  steps.forEach((step, i) => {
    const group = cluster ? slotPart(step.key) : '';
    const indexes = groups.get(group);
    if (indexes) indexes.push(i);
    else groups.set(group, [i]);
  });
  const out: unknown[][] = new Array(steps.length);
  await Promise.all(
    [...groups.values()].map(async (indexes) => {
      const pipeline = redis.pipeline();
      const bounds = indexes.map((i) => {
        const start = pipeline.length;
        steps[i]!.add(pipeline);
        return [start, pipeline.length] as const;
      });
      const replies = (await pipeline.exec()) ?? [];
      for (const [err] of replies) if (err) throw err;
      indexes.forEach((stepIndex, j) => {
        const [start, end] = bounds[j]!;
        out[stepIndex] = replies.slice(start, end).map(([, value]) => value);
      });
    }),
  );
  return out;
}
