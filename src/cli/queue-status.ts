// `pushline queue status`: sizes per state, waiting tasks per priority, the next N tasks with
// score and priority, and the oldest waiting task's age. Each section names the redis-cli
// command that shows the same thing, so the output doubles as a guide to the keys. A sharded
// queue (REDIS_QUEUE_SHARDS) gets one size row per shard key set; on a Redis Cluster the
// commands are for `redis-cli -c` (it follows the slot to its node).
import type { TaskQueue } from '../queue/task-queue.ts';
import { groupKeys, priorityScoreRange } from '../queue/keys.ts';
import { Groups, type GroupInfo } from '../queue/groups.ts';
import { formatAge, table } from './format.ts';

const PRIORITY_NAMES: Record<number, string> = { 5: 'highest', 4: 'high', 3: 'normal', 2: 'low', 1: 'lowest' };

export async function queueStatusReport(queue: TaskQueue, next: number, target: string): Promise<string> {
  const stats = await queue.stats();
  const waiting = await queue.peek(next);
  const { tasks } = queue.keys;
  const shards = queue.keys.shards;
  const lines: string[] = [];
  lines.push(`Redis ${target}${queue.keys.prefix ? `, key prefix "${queue.keys.prefix}"` : ''}${shards.length > 1 ? `, ${shards.length} queue shards` : ''}`);
  if (queue.keys.cluster) lines.push('On a Redis Cluster: run the redis-cli commands below as `redis-cli -c` (keys are hash-tagged, docs/scaling.md).');
  lines.push('');
  lines.push('Sizes (ZCARD of each set):');
  const rows: (string | number)[][] = [];
  if (shards.length === 1) {
    rows.push([tasks.queue, stats.tasks.queued, stats.tasks.processing, stats.tasks.delayed, stats.tasks.dead]);
    rows.push([queue.keys.results.queue, stats.results.queued, stats.results.processing, stats.results.delayed, stats.results.dead]);
  } else {
    const [taskShards, resultShards] = await Promise.all([queue.tasks.shardDepths(), queue.results.shardDepths()]);
    shards.forEach((keys, i) => {
      const t = taskShards[i]!;
      rows.push([keys.tasks.queue, t.queued, t.processing, t.delayed, t.dead]);
    });
    shards.forEach((keys, i) => {
      const r = resultShards[i]!;
      rows.push([keys.results.queue, r.queued, r.processing, r.delayed, r.dead]);
    });
    rows.push(['(all shards)', stats.tasks.queued, stats.tasks.processing, stats.tasks.delayed, stats.tasks.dead]);
  }
  lines.push(table([['queue', 'queued', 'processing', 'delayed', 'dead'], ...rows]));
  lines.push('');
  lines.push(`Waiting in ${shards.length > 1 ? `all ${shards.length} shards (commands for ${tasks.queue}; the same on each)` : tasks.queue} by priority (score = enqueue_ms × (6 − priority)):`);
  lines.push(
    table([
      ['priority', 'waiting', 'oldest waiting', 'redis-cli'],
      ...stats.priorities.map((p) => {
        const [lo, hi] = priorityScoreRange(p.priority, stats.nowMs);
        return [
          `${p.priority} (${PRIORITY_NAMES[p.priority]})`,
          p.queued,
          formatAge(p.oldestEnqueuedMs === null ? null : stats.nowMs - p.oldestEnqueuedMs),
          `ZCOUNT ${tasks.queue} ${lo} ${hi}`,
        ];
      }),
    ]),
  );
  lines.push('');
  lines.push(`Oldest waiting task: ${stats.oldestWaitingAgeMs === null ? 'none waiting' : formatAge(stats.oldestWaitingAgeMs)}`);
  lines.push(`Scheduled (delay_ms / run_at, not yet due): ${stats.scheduled} (ZCARD ${queue.keys.scheduled}${shards.length > 1 ? ' on each shard' : ''}; next: ZRANGE ${queue.keys.scheduled} 0 9 WITHSCORES)`);
  lines.push('');
  lines.push(...groupLines(await new Groups(queue.redis, queue.keys).list(), tasks.queue));
  lines.push('');
  if (waiting.length === 0) {
    lines.push(`Next tasks: none (ZRANGE ${tasks.queue} 0 ${next - 1} WITHSCORES is empty)`);
  } else {
    lines.push(`Next ${waiting.length} to run (ZRANGE ${tasks.queue} 0 ${next - 1} WITHSCORES${shards.length > 1 ? ' on each shard, merged by score' : ''}; details: HGETALL ${shards.length > 1 ? `${queue.keys.taskPrefix.replace(/:0\}/, ':<shard>}')}<id>` : queue.keys.task('<id>')}):`);
    lines.push(
      table([
        ['#', 'task id', 'priority', 'type', 'score', 'waiting'],
        ...waiting.map((t, i) => [
          i + 1,
          t.id,
          t.priority ?? '?',
          t.type ?? '?',
          t.score,
          formatAge(t.createdAtMs === null ? null : stats.nowMs - t.createdAtMs),
        ]),
      ]),
    );
  }
  return lines.join('\n');
}

function describeLimits(limits: GroupInfo['limits']): string {
  if (!limits) return 'none';
  const parts: string[] = [];
  if (limits.concurrency !== undefined) parts.push(`${limits.concurrency} at once`);
  if (limits.rate) parts.push(`${limits.rate.max} per ${limits.rate.per_ms} ms`);
  return parts.join(', ');
}

/** Per-group counts (docs/queue.md, "Groups"), with the redis-cli commands that read them. */
function groupLines(groups: GroupInfo[], taskQueue: string): string[] {
  const g = groupKeys(taskQueue);
  if (groups.length === 0) return [`Groups: none (SMEMBERS ${g.names} and HGETALL ${g.limits} are empty)`];
  return [
    `Groups (waiting: ZCARD ${g.waiting('<group>')}; running: HGET ${g.running} <group>; limits: HGET ${g.limits} <group>):`,
    table([
      ['group', 'waiting', 'running', 'limits', 'state'],
      ...groups.map((x) => [x.name, x.waiting, x.running, describeLimits(x.limits), x.blocked ? 'at its concurrency limit' : x.waiting > 0 ? 'in line' : '-']),
    ]),
  ];
}
