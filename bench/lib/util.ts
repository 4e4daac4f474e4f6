// Small helpers of the queue benchmark: settings, bounded concurrency, percentiles, formatting.

/**
 * A setting from `--name=value` on the command line or BENCH_NAME in the environment
 * (`--latency-s=5` ≡ BENCH_LATENCY_S=5); the command line wins.
 */
export function setting(name: string, fallback: string): string {
  const flag = `--${name}=`;
  const arg = process.argv.slice(2).find((a) => a.startsWith(flag));
  if (arg !== undefined) return arg.slice(flag.length);
  const env = process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  return env !== undefined && env !== '' ? env : fallback;
}

export function numberSetting(name: string, fallback: number): number {
  const text = setting(name, String(fallback));
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got "${text}"`);
  return n;
}

export function listSetting(name: string, fallback: string): string[] {
  return setting(name, fallback)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Runs fn(0..n-1) with at most `limit` calls in flight. */
export async function pool(n: number, limit: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, n)) }, lane));
}

/** Deterministic PRNG (mulberry32), so both queues get the same priority sequence. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${Math.round(ms / 1000)} s: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A promise plus its resolve, for "the N-th completion happened". */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

export function fmtMs(n: number): string {
  return Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : 'n/a';
}

export function fmtRatio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : 'n/a';
}

/** Runs registered clean-up steps once, last registered first, whatever happened before. */
export class Cleanup {
  private readonly steps: { what: string; fn: () => Promise<unknown> | unknown }[] = [];
  private running: Promise<void> | null = null;

  add(what: string, fn: () => Promise<unknown> | unknown): () => void {
    const step = { what, fn };
    this.steps.push(step);
    return () => {
      const at = this.steps.indexOf(step);
      if (at >= 0) this.steps.splice(at, 1);
    };
  }

  /** Safe to call again (a signal during clean-up): later calls wait for the first one. */
  run(): Promise<void> {
    this.running ??= this.runSteps();
    return this.running;
  }

  private async runSteps(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await withTimeout(Promise.resolve().then(step.fn), 15_000, `clean-up: ${step.what}`);
      } catch (err) {
        console.error(`[bench] clean-up "${step.what}" failed: ${String(err)}`);
      }
    }
  }
}

const describeError = (err: unknown) => (err instanceof Error ? (err.stack ?? err.message) : String(err));

/**
 * Runs a bench's main with everything it started cleaned up on success, on error and on
 * Ctrl-C or SIGTERM; exits 0, 1 or 130. `explain` may turn an error into a clearer line.
 */
export async function runBench(cleanup: Cleanup, main: () => Promise<void>, explain: (err: unknown) => string | null = () => null): Promise<never> {
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`\n[bench] ${signal}: cleaning up`);
    void cleanup.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const onFatal = (err: unknown) => {
    console.error(`[bench] ${explain(err) ?? `unexpected error: ${describeError(err)}`}`);
    void cleanup.run().finally(() => process.exit(1));
  };
  process.on('unhandledRejection', onFatal);
  process.on('uncaughtException', onFatal);
  let exitCode = 0;
  try {
    await main();
  } catch (err) {
    console.error(`[bench] ${explain(err) ?? `failed: ${describeError(err)}`}`);
    exitCode = 1;
  } finally {
    await cleanup.run();
  }
  process.exit(exitCode);
}
