// The push benchmark's logic phase (issue 11, item 5): per-request work of ONE `pushline logic`
// process on its hot routes. A load generator in its own process (bench/lib/http-load.ts,
// undici, `connections` keep-alive connections) posts the same valid body back to back; Redis is
// the bench's redis-server (its own process); no job runs, so tasks only accumulate (flushed
// between routes). Reported per route: accepted requests/s, logic CPU µs per accepted request
// (and the one-core estimate 1 s ÷ that), Redis CPU µs per request, and the load generator's CPU.
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../src/local/redis-server.ts';
import { BASIC, SECRET, log, redisCommandCalls, redisCpuSeconds, type Report } from './push-common.ts';
import { childEnv, procCpuSeconds, startChild, waitForHttp } from './push-procs.ts';
import { fmtInt } from './util.ts';

export interface LogicPhaseOptions {
  root: string;
  /** Checkouts whose `bin/pushline.js logic` is measured, in turn (before/after comparisons); [root] by default. */
  logicRoots: string[];
  /** Rounds over the roots; each route's best (lowest CPU) round is reported. */
  rounds: number;
  dir: string;
  redisPort: number;
  connections: number;
  seconds: number;
  warmupS: number;
  routes: string[];
}

/** The body each route gets: the smallest request a real caller sends. */
const ROUTES: Record<string, { path: string; body: unknown }> = {
  '/logic/send': { path: '/logic/send', body: { roomId: 'video_123', userId: 'user_1', messages: [{ content: 'hello room' }] } },
  '/logic/push': { path: '/logic/push', body: { userIds: ['user_1'], message: { text: 'hello user' } } },
  '/generate': { path: '/generate', body: { audio: 'https://example.com/a.mp3', priority: 3 } },
};

export const LOGIC_ROUTES = Object.keys(ROUTES);

export interface LogicRouteResult { root: string; route: string; rate: number; cpuUs: number; redisUs: number; tasksPerScriptCall: number; loaderCpuPct: number; accepted: number; errors: string }

/** Script calls (EVALSHA + EVAL) Redis has run so far: how many tasks share one enqueue call. */
async function scriptCalls(redis: Redis): Promise<number> {
  const calls = await redisCommandCalls(redis);
  return (calls.get('evalsha') ?? 0) + (calls.get('eval') ?? 0);
}

/** One logic process from `root`, every route in turn. */
async function measureRoot(o: LogicPhaseOptions, root: string): Promise<LogicRouteResult[]> {
  const port = await freePort();
  const logic = startChild('logic', process.execPath, [join(root, 'bin/pushline.js'), 'logic'], {
    env: childEnv({
      REDIS_HOST: '127.0.0.1', REDIS_PORT: String(o.redisPort), REDIS_KEY_PREFIX: 'bench3:', PUSHLINE_DEV: 'true', LOG_LEVEL: 'warn',
      AUTH_SECRET: SECRET, LOGIC_HOST: '127.0.0.1', LOGIC_PORT: String(port),
    }),
    cwd: o.dir,
  });
  const redis = new Redis({ host: '127.0.0.1', port: o.redisPort, protocol: 2 });
  const results: LogicRouteResult[] = [];
  try {
    await waitForHttp(`http://127.0.0.1:${port}/health`, 60_000, logic);
    for (const name of o.routes) {
      const route = ROUTES[name];
      if (!route) throw new Error(`--logic-routes: unknown route ${name} (known: ${LOGIC_ROUTES.join(', ')})`);
      await redis.flushall();
      const loader = startChild(`load generator ${name}`, process.execPath, ['--import', 'tsx', join(o.root, 'bench/lib/http-load.ts'), JSON.stringify({
        origin: `http://127.0.0.1:${port}`, path: route.path, headers: { authorization: BASIC, 'content-type': 'application/json' },
        body: JSON.stringify(route.body), status: 202, connections: o.connections, seconds: o.seconds, warmupS: o.warmupS,
      })], { env: childEnv({}), cwd: o.root });
      try {
        await loader.nextLine(60_000 + o.warmupS * 1000); // {"measuring":true}
        const cpu0 = procCpuSeconds(logic.pid);
        const redis0 = await redisCpuSeconds(redis);
        const scripts0 = await scriptCalls(redis);
        const done = JSON.parse(await loader.nextLine(60_000 + o.seconds * 1000)) as {
          requests: number; accepted: number; statuses: Record<string, number>; seconds: number; cpuSeconds: number; firstError: string;
        };
        const cpu = procCpuSeconds(logic.pid) - cpu0;
        const redisCpu = (await redisCpuSeconds(redis)) - redis0;
        const scripts = (await scriptCalls(redis)) - scripts0;
        const r: LogicRouteResult = {
          root, route: name, rate: done.accepted / done.seconds, cpuUs: (cpu / Math.max(1, done.accepted)) * 1e6, redisUs: (redisCpu / Math.max(1, done.accepted)) * 1e6,
          tasksPerScriptCall: done.accepted / Math.max(1, scripts),
          loaderCpuPct: (done.cpuSeconds / done.seconds) * 100, accepted: done.accepted,
          errors: done.requests - done.accepted > 0 ? `${done.requests - done.accepted} not accepted (${JSON.stringify(done.statuses)}; first: ${done.firstError})` : '',
        };
        results.push(r);
        log(
          `  ${root === o.root ? '' : `[${root}] `}${name}: ${fmtInt(r.rate)} accepted/s, logic ${fmtInt(r.cpuUs)} µs CPU per request (${((cpu / done.seconds) * 100).toFixed(0)}% of one core; ` +
            `one-core estimate ${fmtInt(1e6 / r.cpuUs)}/s), Redis ${r.redisUs.toFixed(1)} µs per request (${r.tasksPerScriptCall.toFixed(1)} requests per script call), load generator ${r.loaderCpuPct.toFixed(0)}% of one core${r.errors ? `; ${r.errors}` : ''}`,
        );
      } finally {
        await loader.stop();
      }
    }
  } finally {
    redis.disconnect();
    await logic.stop();
  }
  return results;
}

export async function phaseLogic(o: LogicPhaseOptions, report: Report): Promise<LogicRouteResult[]> {
  log(
    `\n## logic — one \`pushline logic\` process, ${o.connections} keep-alive connections from a load generator process, ` +
      `${o.seconds} s per route after ${o.warmupS} s warm-up; routes ${o.routes.join(', ')}; no job (tasks accumulate, flushed between routes)` +
      (o.logicRoots.length > 1 || o.rounds > 1 ? `; ${o.rounds} round(s) over ${o.logicRoots.join(', ')}, best (lowest CPU) round reported` : ''),
  );
  const all: LogicRouteResult[] = [];
  // Rounds alternate the checkouts, so a busy spell on a shared machine hits each about equally.
  for (let round = 0; round < o.rounds; round++) for (const root of o.logicRoots) all.push(...(await measureRoot(o, root)));
  const best: LogicRouteResult[] = [];
  for (const root of o.logicRoots) {
    for (const route of o.routes) {
      const runs = all.filter((r) => r.root === root && r.route === route);
      if (runs.length) best.push(runs.reduce((a, b) => (b.cpuUs < a.cpuUs ? b : a)));
    }
  }
  for (const r of best) {
    const tag = o.logicRoots.length > 1 ? ` [${r.root}]` : '';
    report.row({ metric: `logic ${r.route}${tag}: accepted requests/s (↑)`, pushline: fmtInt(r.rate), detail: `${o.connections} connections; load generator ${r.loaderCpuPct.toFixed(0)}% of one core` });
    report.row({ metric: `  logic CPU µs per accepted request (↓)`, pushline: fmtInt(r.cpuUs), detail: `one-core estimate ${fmtInt(1e6 / r.cpuUs)} requests/s` });
    report.row({ metric: `  Redis CPU µs per request (↓)`, pushline: r.redisUs.toFixed(1), detail: `${r.tasksPerScriptCall.toFixed(1)} requests per script call${r.errors ? `; ${r.errors}` : ''}` });
  }
  return best;
}
