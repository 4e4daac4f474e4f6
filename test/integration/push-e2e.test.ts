// The push end-to-end suite (push-e2e.suite.ts) on its own standalone redis-server.
import { startPushStack } from '../helpers/stack.ts';
import { pushEndToEndSuite } from './push-e2e.suite.ts';

pushEndToEndSuite('push end to end on a standalone Redis', () => startPushStack());
