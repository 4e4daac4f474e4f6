// Returns expired leases (a worker died or hung) to their queue, or dead-letters them when
// their attempts are spent. Every job process runs one; the settle script's
// only-if-expired guard and lease tokens make concurrent reapers safe.
import type { Logger } from '../util/log.ts';
import type { Stage } from '../queue/stage.ts';
import type { Settlement } from '../queue/task.ts';

export interface ReaperStage {
  stage: Stage;
  maxAttempts: number;
}

const BATCH = 500;

export async function reapOnce(stages: readonly ReaperStage[], log: Logger): Promise<number> {
  let total = 0;
  for (const { stage, maxAttempts } of stages) {
    for (;;) {
      const expired = await stage.expired(BATCH);
      if (expired.length === 0) break;
      const errorField = stage.spec.fieldPrefix === '' ? 'error' : 'webhook_error';
      const items: Settlement[] = expired.map((lease) => {
        const spent = lease.attempts >= (lease.maxAttempts ?? maxAttempts);
        const error = `lease expired during attempt ${lease.attempts} (worker stopped or hung)`;
        return { id: lease.id, token: lease.token, outcome: spent ? 'dead' : 'retry', onlyIfExpired: true, fields: { [errorField]: error } };
      });
      const applied = await stage.settle(items);
      const count = applied.filter(Boolean).length;
      total += count;
      if (count > 0) log.warn({ stage: stage.spec.name, count }, 'reaper returned expired leases');
      if (expired.length < BATCH) break;
    }
  }
  return total;
}

export class Reaper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly stages: readonly ReaperStage[],
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    const tick = () => {
      this.running = reapOnce(this.stages, this.log).catch((err) => this.log.warn({ err: String(err) }, 'reaper pass failed'));
      // Jitter spreads the passes of many job processes over the interval.
      this.timer = setTimeout(tick, this.intervalMs * (0.75 + Math.random() / 2));
      this.timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
