// Tests spawn bin/pushline.js, which runs the compiled dist/: build it first when it is
// missing or older than src/ (so `npx vitest run some.test.ts` works on a fresh checkout too).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function buildDist(): void {
  const build = fileURLToPath(new URL('../tools/build.mjs', import.meta.url));
  const result = spawnSync(process.execPath, [build, '--if-stale'], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error('npm run build failed: the tests need dist/');
}
