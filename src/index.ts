// `import … from 'pushline'`: the server-side API for a team's own code — the queue (enqueue,
// inspect, cancel), the logic HTTP app, the job, and what a task type of its own implements
// (see docs/processors.md). The browser/Node client is `pushline/client`.
export { TaskQueue } from './queue/task-queue.ts';
export type { NewTask, EnqueueResult, EnqueueOutcome, QueueOptions, QueueStats, WaitingTask, PriorityDepth } from './queue/task-queue.ts';
export { queueKeys, PRIORITIES, type QueueKeys, type KeyNames } from './queue/keys.ts';
export { TASK_STATUSES, type TaskStatus, type TaskHash } from './queue/task.ts';
export { buildLogicApp, type LogicDeps } from './logic/app.ts';
export { startLogic, LOGIC_TASK_TYPES, type LogicHandle } from './logic/main.ts';
export { startJob, BUILT_IN_TASK_TYPES, type JobHandle } from './job/main.ts';
export { PermanentError, ProcessorRegistry, defineProcessors, type Processor, type TaskContext } from './job/processor.ts';
export { loadEnv, parseEnv, readEnvironment, ConfigError } from './config/load.ts';
export type { Env } from './config/schema.ts';
export { keysFromEnv, queueOptionsFromEnv } from './config/derive.ts';
export { createRedis, redisTarget } from './redis/connect.ts';
export { createLogger, type Logger } from './util/log.ts';
export { PACKAGE_VERSION } from './version.ts';
