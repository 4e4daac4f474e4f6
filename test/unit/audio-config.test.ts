// The AUDIO_* settings: defaults, one clear line per bad value, and the command template checked
// at start-up rather than on the first task.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEnv } from '../../src/config/load.ts';
import { audioSettingsFromEnv } from '../../src/audio/options.ts';

describe('AUDIO_* configuration', () => {
  it('has safe defaults: 100 MiB, two minutes, three redirects, no private targets, no command', () => {
    const parsed = parseEnv({});
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
    expect(audioSettingsFromEnv(parsed.env)).toEqual({
      workDir: join(tmpdir(), 'pushline-audio'),
      maxBytes: 100 * 1024 * 1024,
      downloadTimeoutMs: 120_000,
      maxRedirects: 3,
      allowPrivate: false,
      command: null,
      commandTimeoutMs: 600_000,
      concurrency: 2,
      retentionSeconds: 7 * 86400,
    });
  });

  it('resolves a relative work dir and parses the command template', () => {
    const parsed = parseEnv({ AUDIO_WORK_DIR: 'var/audio', AUDIO_PROCESSOR_CMD: '["ffmpeg","-i","{input}","{output_dir}/out.mp3"]', AUDIO_ALLOW_PRIVATE: 'true' });
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
    const settings = audioSettingsFromEnv(parsed.env);
    expect(settings.workDir).toBe(join(process.cwd(), 'var/audio'));
    expect(settings.command).toEqual(['ffmpeg', '-i', '{input}', '{output_dir}/out.mp3']);
    expect(settings.allowPrivate).toBe(true);
  });

  it('names every bad value on its own line', () => {
    const parsed = parseEnv({
      AUDIO_MAX_BYTES: '0',
      AUDIO_DOWNLOAD_TIMEOUT_MS: 'soon',
      AUDIO_MAX_REDIRECTS: '11',
      AUDIO_ALLOW_PRIVATE: 'perhaps',
      AUDIO_PROCESSOR_CMD: 'ffmpeg -i {file}',
      AUDIO_CONCURRENCY: '0',
    });
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.errors).toHaveLength(6);
    const line = (name: string) => parsed.errors.find((e) => e.startsWith(`${name} `));
    expect(line('AUDIO_MAX_BYTES')).toContain('at least 1');
    expect(line('AUDIO_DOWNLOAD_TIMEOUT_MS')).toContain('whole number');
    expect(line('AUDIO_MAX_REDIRECTS')).toContain('at most 10');
    expect(line('AUDIO_ALLOW_PRIVATE')).toContain('true or false');
    expect(line('AUDIO_PROCESSOR_CMD')).toMatch(/^AUDIO_PROCESSOR_CMD uses an unknown placeholder \{file\}; known: \{input\} \{output_dir\} \{task_id\}/);
    expect(line('AUDIO_CONCURRENCY')).toContain('at least 1');
  });
});
