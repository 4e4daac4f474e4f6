#!/usr/bin/env node
// `npm run build`: compiles src/ into dist/ (tsc: ESM JS, .d.ts, source maps) and copies the
// files read from disk at run time next to the code that reads them (Lua scripts, web pages).
// proto/ is read from the package root, so it is not copied.
// `--if-stale` builds only when dist/ is missing or older than src/ (npm start, npm test).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = join(ROOT, 'src');
const DIST = join(ROOT, 'dist');
/** Written last: its time is when dist/ was complete. */
const STAMP = join(DIST, '.built');
/** Besides src/, what changes the output. */
const INPUTS = ['tsconfig.json', 'tsconfig.build.json', 'package.json'].map((f) => join(ROOT, f));
const ASSETS = ['queue/lua', 'routing/lua', 'logic/web/public'];

function newestMtime(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs; // a deleted file changes its directory's time
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

export function isStale() {
  if (!existsSync(STAMP)) return true;
  const built = statSync(STAMP).mtimeMs;
  return Math.max(newestMtime(SRC), ...INPUTS.map(newestMtime)) > built;
}

export function build({ log = (line) => process.stderr.write(line + '\n') } = {}) {
  log('pushline: building dist/ from src/ …');
  // A clean output: a file removed from src/ must not live on in dist/.
  rmSync(DIST, { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`tsc failed (exit ${result.status ?? result.signal})`);
  for (const dir of ASSETS) {
    mkdirSync(dirname(join(DIST, dir)), { recursive: true });
    cpSync(join(SRC, dir), join(DIST, dir), { recursive: true });
  }
  writeFileSync(STAMP, new Date().toISOString() + '\n');
  log('pushline: dist/ is ready');
}

export function buildIfStale(options) {
  if (isStale()) build(options);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    if (process.argv.includes('--if-stale')) buildIfStale();
    else build();
  } catch (err) {
    process.stderr.write(`pushline: build failed: ${err.message}\n`);
    process.exit(1);
  }
}
