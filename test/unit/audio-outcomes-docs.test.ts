// The README's short list of audio outcomes must agree with docs/audio.md and the code
// (src/audio/download.ts): a target refused by the address check fails at once, while a source
// that refuses the connection is network trouble, retried until it ends `dead`
// (test/integration/audio-task.test.ts shows both).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8').replace(/\s+/g, ' ');

describe('audio outcomes in the docs', () => {
  it('docs/audio.md: a refused connection is retried, a refused target fails', () => {
    const audio = read('docs/audio.md');
    expect(audio).toMatch(/\| refused connection, reset, DNS failure, body cut short \| retried \|/);
    expect(audio).toMatch(/\| a private or loopback address without `AUDIO_ALLOW_PRIVATE=true` \| failed \| `audio URL refused/);
  });

  it('README: "refused" among the failed outcomes means the address check, and refused connections are retried, then dead', () => {
    const readme = read('README.md');
    const failed = /([^.]*): the task ends `failed`/.exec(readme)?.[1] ?? '';
    expect(failed).not.toMatch(/\bor refused\b/);
    expect(failed).toMatch(/refused by the address check/);
    expect(readme).toMatch(/refuses the connection[^.]*retried, and the task ends `dead`/);
  });
});
