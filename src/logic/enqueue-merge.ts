// Enqueue merging for logic's submit routes. Requests that arrive in the same event-loop turn
// (many keep-alive connections under load) are written to Redis as ONE enqueue script call at
// the end of that turn (setImmediate: no fixed waiting window, so a lone request is not
// delayed). One call per turn instead of one per request cuts logic's socket writes and the
// script runs Redis does per message. Tasks keep their arrival order (ids, per-room seq).
import { TaskQueue, type EnqueueResult, type NewTask } from '../queue/task-queue.ts';
import type { QueueBackend } from '../queue/backend.ts';

export type Submit = Pick<TaskQueue | QueueBackend, 'enqueueOne'>;

/** As many tasks as one enqueue call may carry (one script call; keeps its argument list bounded). */
const MAX_MERGED = 500;

interface Waiting {
  task: NewTask;
  resolve: (r: EnqueueResult) => void;
  reject: (e: unknown) => void;
}

/**
 * `target` with enqueueOne merged per event-loop turn when it is the Redis engine; any other
 * backend (BullMQ, Kafka) is returned as it is.
 */
export function mergeEnqueues(target: Submit): Submit {
  if (!(target instanceof TaskQueue)) return target;
  const queue = target;
  let waiting: Waiting[] = [];
  let scheduled = false;

  const send = (batch: Waiting[]) => {
    queue.enqueue(batch.map((w) => w.task)).then(
      (results) => batch.forEach((w, i) => w.resolve(results[i]!)),
      // A script error writes nothing; a reply lost with the connection may follow a write of the
      // whole batch. Either way every caller answers 503, and Idempotency-Key retries are safe.
      (err: unknown) => batch.forEach((w) => w.reject(err)),
    );
  };
  const flush = () => {
    scheduled = false;
    const all = waiting;
    waiting = [];
    for (let at = 0; at < all.length; at += MAX_MERGED) send(all.slice(at, at + MAX_MERGED));
  };

  return {
    enqueueOne(task: NewTask): Promise<EnqueueResult> {
      return new Promise((resolve, reject) => {
        waiting.push({ task, resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
  };
}
