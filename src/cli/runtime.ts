// What the CLI's commands need besides commander: config, logger, Redis and the queue. main.ts
// loads it only once a command is about to run, so `--help` and `--version` load commander alone.
export { exitOnConfigError, loadEnv, readEnvironment } from '../config/load.ts';
export { keysFromEnv, queueOptionsFromEnv } from '../config/derive.ts';
export { createRedis, describeTarget, redisTarget } from '../redis/connect.ts';
export { TaskQueue } from '../queue/task-queue.ts';
export { createLogger, useColour } from '../util/log.ts';
export { withLocalStack } from '../local/stack-file.ts';
export { stopOnSignals } from './lifecycle.ts';
export { reportListening } from '../local/listening-report.ts';
