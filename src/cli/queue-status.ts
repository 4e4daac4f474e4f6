// `pushline queue status`: sizes per state, waiting tasks per priority, the next N tasks with
// score and priority, and the oldest waiting task's age. Each section names the redis-cli
// command that shows the same thing, so the output doubles as a guide to the keys.
import type { TaskQueue } from '../queue/task-queue.ts';
import { priorityScoreRange } from '../queue/keys.ts';
import { formatAge, table } from './format.ts';

const PRIORITY_NAMES: Record<number, string> = { 5: 'highest', 4: 'high', 3: 'normal', 2: 'low', 1: 'lowest' };

export async function queueStatusReport(queue: TaskQueue, next: number, target: string): Promise<string> {
  const stats = await queue.stats();
  const waiting = await queue.peek(next);
  const { tasks, results } = queue.keys;
  const lines: string[] = [];
  lines.push(`Redis ${target}${queue.keys.prefix ? `, key prefix "${queue.keys.prefix}"` : ''}`);
  lines.push('');
  lines.push('Sizes (ZCARD of each set):');
  lines.push(
    table([
      ['queue', 'queued', 'processing', 'delayed', 'dead'],
      [tasks.queue, stats.tasks.queued, stats.tasks.processing, stats.tasks.delayed, stats.tasks.dead],
      [results.queue, stats.results.queued, stats.results.processing, stats.results.delayed, stats.results.dead],
    ]),
  );
  lines.push('');
  lines.push(`Waiting in ${tasks.queue} by priority (score = enqueue_ms × (6 − priority)):`);
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
  lines.push('');
  if (waiting.length === 0) {
    lines.push(`Next tasks: none (ZRANGE ${tasks.queue} 0 ${next - 1} WITHSCORES is empty)`);
  } else {
    lines.push(`Next ${waiting.length} to run (ZRANGE ${tasks.queue} 0 ${next - 1} WITHSCORES; details: HGETALL ${queue.keys.task('<id>')}):`);
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
