// analyseFile on files built in code: the fields music-metadata reports for WAV, MP3 and FLAC,
// and a clear BadAudioError for what is not audio or is cut short.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyseFile, BadAudioError, declaredLength } from '../../src/audio/analyse.ts';
import { flac, mp3, MP3_SAMPLES_PER_FRAME, noise, wav } from '../helpers/audio.ts';

const dir = mkdtempSync(join(tmpdir(), 'pushline-analyse-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
async function analyse(bytes: Buffer) {
  const path = join(dir, `f${++n}`);
  writeFileSync(path, bytes);
  return analyseFile(path, bytes.length);
}

async function refused(bytes: Buffer): Promise<string> {
  const err = await analyse(bytes).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BadAudioError);
  return (err as Error).message;
}

describe('analyseFile', () => {
  it('reads a PCM WAV: container, codec, duration, rate, channels, bitrate, lossless', async () => {
    const got = await analyse(wav({ seconds: 2, sampleRate: 8000, channels: 2 }));
    expect(got.format).toEqual({
      container: 'WAVE', codec: 'PCM', codec_profile: null, duration: 2, sample_rate: 8000, channels: 2,
      bits_per_sample: 16, bitrate: 256_000, lossless: true, samples: 16_000,
    });
    expect(got.warnings).toEqual([]);
  });

  it('reads an MP3 frame sequence and its ID3 title', async () => {
    const got = await analyse(mp3(100, 'Seed track'));
    expect(got.format).toMatchObject({
      container: 'MPEG', codec: 'MPEG 1 Layer 3', sample_rate: 44_100, channels: 1, bitrate: 128_000, lossless: false,
      samples: 100 * MP3_SAMPLES_PER_FRAME,
    });
    expect(got.format.duration).toBeCloseTo((100 * MP3_SAMPLES_PER_FRAME) / 44_100, 6);
    expect(got.tags).toEqual({ title: 'Seed track' });
  });

  it('reads a FLAC stream', async () => {
    const got = await analyse(flac({ seconds: 1.5, sampleRate: 16_000, channels: 2 }));
    expect(got.format).toMatchObject({ container: 'FLAC', codec: 'FLAC', duration: 1.5, sample_rate: 16_000, channels: 2, bits_per_sample: 16, lossless: true });
  });

  it('refuses bytes that are no audio format, showing how they start', async () => {
    expect(await refused(noise(4096))).toMatch(/^not an audio file: .*starts with bytes [0-9a-f]{2} /);
    expect(await refused(Buffer.from('<!doctype html><html><body>Not here</body></html>'))).toMatch(/starts with "<!doctype html><"/);
    expect(await refused(Buffer.alloc(0))).toMatch(/not an audio file: the download is empty/);
  });

  it('refuses a WAV cut short, by the length its RIFF header declares', async () => {
    const whole = wav({ seconds: 1 });
    expect(await refused(whole.subarray(0, 1000))).toMatch(/^truncated audio: the RIFF\/WAVE header declares 16044 bytes but the file has 1000$/);
    expect(await refused(whole.subarray(0, 30))).toMatch(/^truncated audio/);
  });

  it('refuses files that have a container but no audio stream in them', async () => {
    expect(await refused(mp3(3, 'only a tag').subarray(0, 40))).toMatch(/no audio stream found/);
    expect(await refused(flac({ seconds: 1 }).subarray(0, 20))).toMatch(/no audio stream found|truncated/);
  });
});

describe('declaredLength', () => {
  it('reads RIFF (little-endian) and AIFF (big-endian) sizes and ignores streaming placeholders', () => {
    const aiff = Buffer.from('FORM\0\0\x10\0AIFF', 'latin1');
    expect(declaredLength(aiff)).toEqual({ container: 'FORM/AIFF', bytes: 0x1000 + 8 });
    expect(declaredLength(wav({ seconds: 0.5 }))).toEqual({ container: 'RIFF/WAVE', bytes: 44 + 8000 });
    const streaming = wav({ seconds: 0.5 });
    streaming.writeUInt32LE(0xffffffff, 4);
    expect(declaredLength(streaming)).toBeNull();
    expect(declaredLength(Buffer.from('fLaC'))).toBeNull();
  });
});
