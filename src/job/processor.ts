// What a task type plugs into the job: a processor gets the decoded task and an abort signal
// and returns the result (any JSON value) or throws. PermanentError means "do not retry".
import type { Logger } from '../util/log.ts';
import type { TaskHash } from '../queue/task.ts';

export interface TaskContext {
  id: string;
  type: string;
  priority: number;
  attempt: number;
  payload: unknown;
  hash: TaskHash;
  /** Aborted when the lease is lost, the job shuts down or the task's timeout passes (reason: TaskTimeoutError): stop and return soon. */
  signal: AbortSignal;
  log: Logger;
  /**
   * Reports how far the task is (0..1) with an optional note; sent to the task's user/room as a
   * `processing` status when it asked for notifications, a no-op otherwise.
   */
  progress(fraction: number, note?: string): void;
}

export interface Processor {
  readonly type: string;
  process(ctx: TaskContext): Promise<unknown>;
  /**
   * The processor logs its own outcome at info (push: the seed's lines for one message, one
   * summary line per room for a batch), so the job's `task <id> completed` line for this type is
   * written at debug. Failures, retries and dead letters are logged at warn either way.
   */
  readonly logsOwnOutcome?: boolean;
}

/**
 * A failure that retrying cannot fix (bad input, unsupported content): the task ends `failed`.
 * Any Error named 'PermanentError' counts, so a processor module need not import this class
 * (and one that does is not fooled by a second copy of pushline in its node_modules).
 */
export class PermanentError extends Error {
  override readonly name = 'PermanentError';

  static override [Symbol.hasInstance](value: unknown): boolean {
    return value instanceof Error && value.name === 'PermanentError';
  }
}

/** Identity, for type checking and editor help in a JOB_PROCESSORS module: `export default defineProcessors({ type, process })`. */
export function defineProcessors(...processors: Processor[]): Processor[] {
  return processors;
}

export class ProcessorRegistry {
  private readonly processors = new Map<string, Processor>();

  constructor(processors: Processor[] = []) {
    for (const p of processors) this.register(p);
  }

  register(processor: Processor): this {
    if (this.processors.has(processor.type)) throw new Error(`a processor for "${processor.type}" is already registered`);
    this.processors.set(processor.type, processor);
    return this;
  }

  get(type: string): Processor | undefined {
    return this.processors.get(type);
  }

  types(): string[] {
    return [...this.processors.keys()];
  }
}
