// What a downloaded file is, read by music-metadata from the bytes themselves (the server's
// Content-Type and the URL's extension are never trusted). Anything that is not audio, or
// audio that is visibly cut short, is a BadAudioError: retrying cannot fix the file.
//
// Truncation is caught where the file says how long it should be: RIFF/WAVE and AIFF headers
// declare their total size, and parsers that run out of bytes mid-structure fail. Frame-based
// streams without a declared length (MP3, the frames after a FLAC header) can lose their tail
// unnoticed; an AUDIO_PROCESSOR_CMD that decodes the file can catch some of that (docs/audio.md).
import { open } from 'node:fs/promises';
import type { IAudioMetadata } from 'music-metadata';

export class BadAudioError extends Error {
  override readonly name = 'BadAudioError';
}

export interface AudioFormat {
  container: string | null;
  codec: string | null;
  codec_profile: string | null;
  /** Seconds. */
  duration: number | null;
  sample_rate: number | null;
  channels: number | null;
  bits_per_sample: number | null;
  /** Bits per second. */
  bitrate: number | null;
  lossless: boolean | null;
  samples: number | null;
}

export interface AudioAnalysis {
  format: AudioFormat;
  /** The common tags that are present (title, artist, album, year, genre). */
  tags: Record<string, string | number>;
  warnings: string[];
}

const HEAD_BYTES = 16;

async function readHead(path: string): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await file.read(head, 0, HEAD_BYTES, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** The first bytes as a user can recognise them: quoted text when printable, hex otherwise. */
export function describeStart(head: Buffer): string {
  if (head.length === 0) return 'the file is empty';
  const printable = [...head].every((b) => (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d);
  return printable ? `it starts with ${JSON.stringify(head.toString('latin1'))}` : `it starts with bytes ${head.toString('hex').replace(/(..)/g, '$1 ').trim()}`;
}

/**
 * Containers whose header declares the total length: RIFF (WAVE) and IFF (AIFF/AIFC). Null
 * when the file has none, or a placeholder (0 or 0xFFFFFFFF from streaming writers).
 */
export function declaredLength(head: Buffer): { container: string; bytes: number } | null {
  if (head.length < 12) return null;
  const id = head.toString('latin1', 0, 4);
  const form = head.toString('latin1', 8, 12);
  let size: number;
  if (id === 'RIFF' && form === 'WAVE') size = head.readUInt32LE(4);
  else if (id === 'FORM' && (form === 'AIFF' || form === 'AIFC')) size = head.readUInt32BE(4);
  else return null;
  if (size === 0 || size === 0xffffffff) return null;
  return { container: id === 'RIFF' ? 'RIFF/WAVE' : `FORM/${form}`, bytes: size + 8 };
}

// music-metadata 11's WAVE parser subtracts a chunk's size before comparing it with what is
// left, so this warning appears on every intact WAV; real truncation is checked above.
const SPURIOUS_WARNINGS = new Set(['Data chunk size exceeds file size']);

function formatOf(meta: IAudioMetadata): AudioFormat {
  const f = meta.format;
  return {
    container: f.container ?? null,
    codec: f.codec ?? null,
    codec_profile: f.codecProfile ?? null,
    duration: f.duration ?? null,
    sample_rate: f.sampleRate ?? null,
    channels: f.numberOfChannels ?? null,
    bits_per_sample: f.bitsPerSample ?? null,
    bitrate: f.bitrate !== undefined ? Math.round(f.bitrate) : null,
    lossless: f.lossless ?? null,
    samples: f.numberOfSamples ?? null,
  };
}

function tagsOf(meta: IAudioMetadata): Record<string, string | number> {
  const c = meta.common;
  const tags: Record<string, string | number> = {};
  if (c.title) tags.title = c.title;
  if (c.artist) tags.artist = c.artist;
  if (c.album) tags.album = c.album;
  if (c.year) tags.year = c.year;
  if (c.genre?.length) tags.genre = c.genre.join(', ');
  return tags;
}

// Containers as music-metadata names them → the extension tools expect (sox goes by the name).
const EXTENSIONS: [RegExp, string][] = [
  [/^WAVE$/, 'wav'],
  [/^FLAC$/, 'flac'],
  [/^Ogg$/, 'ogg'],
  [/^AIFF-C$/, 'aifc'],
  [/^AIFF$/, 'aiff'],
  [/^EBML\/webm/i, 'webm'],
  [/^EBML\//, 'mka'],
  [/^ASF\//, 'wma'],
  [/^WavPack$/, 'wv'],
  [/^DSF$/, 'dsf'],
  [/^DSDIFF\//, 'dff'],
  [/^Musepack/, 'mpc'],
  [/^Monkey's Audio$/, 'ape'],
  [/^(M4A|M4B|mp4|isom|iso\d|mp42|3gp)/i, 'm4a'],
];

/** A file extension for the detected format, or null when there is no obvious one. */
export function extensionFor(format: AudioFormat): string | null {
  const container = format.container ?? '';
  if (container === 'MPEG') {
    const codec = format.codec ?? '';
    return /Layer 3/.test(codec) ? 'mp3' : /Layer 2/.test(codec) ? 'mp2' : /AAC/.test(codec) ? 'aac' : null;
  }
  return EXTENSIONS.find(([pattern]) => pattern.test(container))?.[1] ?? null;
}

/** music-metadata's parse errors are about the content; anything else (EIO, ...) is ours. */
const CONTENT_ERRORS = new Set(['UnsupportedFileTypeError', 'UnexpectedFileContentError', 'FieldDecodingError', 'InternalParserError']);

/**
 * `path` must not end in an extension: music-metadata lets an extension pick the parser before
 * it looks at the content, and the bytes — not a name from the URL — must decide.
 */
export async function analyseFile(path: string, size: number): Promise<AudioAnalysis> {
  const head = await readHead(path);
  if (size === 0) throw new BadAudioError('not an audio file: the download is empty');
  const declared = declaredLength(head);
  if (declared && declared.bytes > size) {
    throw new BadAudioError(`truncated audio: the ${declared.container} header declares ${declared.bytes} bytes but the file has ${size}`);
  }
  let meta: IAudioMetadata;
  try {
    // Loaded on the first audio task, not at every job start (it is a tenth of a second of it).
    const { parseFile } = await import('music-metadata');
    meta = await parseFile(path, { skipCovers: true });
  } catch (err) {
    const name = (err as Error | undefined)?.name ?? '';
    const message = (err as Error | undefined)?.message ?? String(err);
    if (name === 'CouldNotDetermineFileTypeError') {
      throw new BadAudioError(`not an audio file: its content matches no audio format music-metadata knows (${describeStart(head)})`);
    }
    if (name === 'EndOfStreamError') throw new BadAudioError('truncated audio: the file ends inside its own headers');
    if (CONTENT_ERRORS.has(name)) throw new BadAudioError(`damaged or unsupported audio: ${message.replace(path, 'the file')}`);
    throw err;
  }
  const format = formatOf(meta);
  if (!meta.format.hasAudio || (format.sample_rate === null && format.duration === null)) {
    const what = format.container ? `a ${format.container} file` : 'the file';
    throw new BadAudioError(`no audio stream found: ${what} without audio format information (header only, or video without sound)`);
  }
  if (format.duration === 0 || format.samples === 0) throw new BadAudioError(`no audio: the ${format.container ?? 'file'} holds no samples`);
  return {
    format,
    tags: tagsOf(meta),
    warnings: meta.quality.warnings.map((w) => w.message).filter((m) => !SPURIOUS_WARNINGS.has(m)),
  };
}
