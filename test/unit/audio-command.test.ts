// AUDIO_PROCESSOR_CMD: the template syntax (JSON array or plain words, three placeholders, no
// shell) and running it: exit status, output tails, the timeout that kills the whole group.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expandCommand, parseCommandTemplate, runCommand } from '../../src/audio/external-command.ts';

const cwd = mkdtempSync(join(tmpdir(), 'pushline-cmd-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));
const node = process.execPath;

describe('parseCommandTemplate', () => {
  it('takes a JSON array, or words split on whitespace', () => {
    expect(parseCommandTemplate('["ffmpeg", "-i", "{input}", "{output_dir}/a b.mp3"]')).toEqual(['ffmpeg', '-i', '{input}', '{output_dir}/a b.mp3']);
    expect(parseCommandTemplate('  sox {input}   {output_dir}/out.wav ')).toEqual(['sox', '{input}', '{output_dir}/out.wav']);
  });

  it.each([
    ['', /must name a program/],
    ['["a", 1]', /JSON array of strings/],
    ['[not json', /not a valid JSON array/],
    ['tool {input} {output}', /unknown placeholder \{output\}; known: \{input\} \{output_dir\} \{task_id\}/],
    ['tool {output_dir}', /must pass the file to the program with \{input\}/],
  ])('refuses %j', (text, message) => {
    expect(() => parseCommandTemplate(text)).toThrow(message);
  });

  it('replaces placeholders inside arguments and leaves shell syntax as plain text', () => {
    const argv = expandCommand(parseCommandTemplate('tool --in={input} {output_dir}/{task_id}.json ;rm -rf $HOME'), {
      input: '/w/1/input.wav', output_dir: '/w/1/files', task_id: '000000000001',
    });
    expect(argv).toEqual(['tool', '--in=/w/1/input.wav', '/w/1/files/000000000001.json', ';rm', '-rf', '$HOME']);
  });
});

describe('runCommand', () => {
  it('records exit code and the tails of stdout and stderr, with a minimal environment', async () => {
    const script = 'process.stdout.write(JSON.stringify({ secret: process.env.WEBHOOK_SECRET ?? null, id: process.env.PUSHLINE_TASK_ID })); process.stderr.write("x".repeat(10000) + "END"); process.exit(3)';
    process.env.WEBHOOK_SECRET = 'must-not-leak';
    try {
      const run = await runCommand({ argv: [node, '-e', script], cwd, timeoutMs: 30_000, env: { PUSHLINE_TASK_ID: '42' } });
      expect(run).toMatchObject({ exitCode: 3, signal: null, timedOut: false });
      expect(JSON.parse(run.stdoutTail)).toEqual({ secret: null, id: '42' });
      expect(run.stderrTail.startsWith('…')).toBe(true);
      expect(run.stderrTail.endsWith('END')).toBe(true);
      expect(run.stderrTail.length).toBeLessThanOrEqual(4097);
    } finally {
      delete process.env.WEBHOOK_SECRET;
    }
  });

  it('kills the command and what it started when the timeout passes', async () => {
    // The child starts a grandchild that would keep the pipes open for a minute.
    const script = `require('child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'inherit' }); setTimeout(() => {}, 60000)`;
    const run = await runCommand({ argv: [node, '-e', script], cwd, timeoutMs: 300 });
    expect(run).toMatchObject({ timedOut: true, exitCode: null, signal: 'SIGKILL' });
  });

  it('kills the command when the task is aborted', async () => {
    const controller = new AbortController();
    const pending = runCommand({ argv: [node, '-e', 'setTimeout(() => {}, 60000)'], cwd, timeoutMs: 60_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    expect(await pending).toMatchObject({ timedOut: false, signal: 'SIGKILL' });
  });

  it('rejects when the program cannot be started', async () => {
    await expect(runCommand({ argv: ['/nonexistent/tool', 'x'], cwd, timeoutMs: 1000 })).rejects.toThrow(/ENOENT/);
  });
});
