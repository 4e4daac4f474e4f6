// Audio files built in code, so tests need no fixtures and no external tools: PCM WAV (RIFF
// header by hand), MPEG-1 Layer III (silent frames, optionally behind an ID3v2.3 title tag) and
// FLAC (STREAMINFO with the real MD5, verbatim subframes, CRC-8/CRC-16 per frame).
import { createHash } from 'node:crypto';

export interface PcmShape {
  seconds: number;
  sampleRate?: number;
  channels?: number;
}

/** 16-bit signed samples of a quiet sine, interleaved, little-endian. */
function pcm16(frames: number, channels: number): Buffer {
  const out = Buffer.alloc(frames * channels * 2);
  for (let i = 0; i < frames; i++) {
    const v = Math.round(Math.sin(i / 9) * 8000);
    for (let c = 0; c < channels; c++) out.writeInt16LE(v, (i * channels + c) * 2);
  }
  return out;
}

export function wav({ seconds, sampleRate = 8000, channels = 1 }: PcmShape): Buffer {
  const data = pcm16(Math.round(seconds * sampleRate), channels);
  const head = Buffer.alloc(44);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(36 + data.length, 4);
  head.write('WAVE', 8, 'latin1');
  head.write('fmt ', 12, 'latin1');
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20); // PCM
  head.writeUInt16LE(channels, 22);
  head.writeUInt32LE(sampleRate, 24);
  head.writeUInt32LE(sampleRate * channels * 2, 28);
  head.writeUInt16LE(channels * 2, 32);
  head.writeUInt16LE(16, 34);
  head.write('data', 36, 'latin1');
  head.writeUInt32LE(data.length, 40);
  return Buffer.concat([head, data]);
}

/** ID3v2.3 with one TIT2 frame (ISO-8859-1). */
function id3Title(title: string): Buffer {
  const text = Buffer.concat([Buffer.from([0]), Buffer.from(title, 'latin1')]);
  const frame = Buffer.alloc(10);
  frame.write('TIT2', 0, 'latin1');
  frame.writeUInt32BE(text.length, 4);
  const body = Buffer.concat([frame, text]);
  const head = Buffer.from([0x49, 0x44, 0x33, 3, 0, 0, 0, 0, 0, 0]);
  // The tag size is "syncsafe": 7 bits per byte.
  for (let i = 0, n = body.length; i < 4; i++) head[9 - i] = (n >> (7 * i)) & 0x7f;
  return Buffer.concat([head, body]);
}

export const MP3_FRAME_BYTES = 417; // MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding
export const MP3_SAMPLES_PER_FRAME = 1152;

/** `frames` silent CBR frames: a header (mono) and all-zero side info and main data. */
export function mp3(frames: number, title?: string): Buffer {
  const body = Buffer.alloc(frames * MP3_FRAME_BYTES);
  for (let i = 0; i < frames; i++) body.set([0xff, 0xfb, 0x90, 0xc4], i * MP3_FRAME_BYTES);
  return title ? Buffer.concat([id3Title(title), body]) : body;
}

function crc8(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x8005) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** FLAC's UTF-8-like frame number coding (numbers below 65536 are enough here). */
function frameNumber(n: number): number[] {
  if (n < 0x80) return [n];
  if (n < 0x800) return [0xc0 | (n >> 6), 0x80 | (n & 0x3f)];
  return [0xe0 | (n >> 12), 0x80 | ((n >> 6) & 0x3f), 0x80 | (n & 0x3f)];
}

const FLAC_RATE_CODES: Record<number, number> = { 8000: 0b0100, 16000: 0b0101, 22050: 0b0110, 24000: 0b0111, 32000: 0b1000, 44100: 0b1001, 48000: 0b1010, 96000: 0b1011 };

export function flac({ seconds, sampleRate = 8000, channels = 1 }: PcmShape): Buffer {
  const total = Math.round(seconds * sampleRate);
  const samples = pcm16(total, channels);
  const block = 4096;
  const info = Buffer.alloc(4 + 34);
  info[0] = 0x80; // last metadata block, type 0 (STREAMINFO)
  info.writeUIntBE(34, 1, 3);
  info.writeUInt16BE(block, 4);
  info.writeUInt16BE(block, 6);
  // min/max frame size 0 (unknown), then sample rate (20 bits), channels − 1 (3), bits − 1 (5), total samples (36)
  const packed = (BigInt(sampleRate) << 44n) | (BigInt(channels - 1) << 41n) | (15n << 36n) | BigInt(total);
  info.writeBigUInt64BE(packed, 14);
  createHash('md5').update(samples).digest().copy(info, 22);

  const frames: Buffer[] = [];
  for (let start = 0, n = 0; start < total; start += block, n++) {
    const size = Math.min(block, total - start);
    // Block size code 0111: (size − 1) as 16 bits after the frame number; sample size code 100: 16 bits.
    const header = [0xff, 0xf8, (0b0111 << 4) | (FLAC_RATE_CODES[sampleRate] ?? 0), ((channels - 1) << 4) | (0b100 << 1), ...frameNumber(n), (size - 1) >> 8, (size - 1) & 0xff];
    header.push(crc8(Uint8Array.from(header)));
    const sub = Buffer.alloc(channels * (1 + size * 2));
    for (let c = 0; c < channels; c++) {
      const at = c * (1 + size * 2);
      sub[at] = 0x02; // verbatim subframe, no wasted bits
      for (let i = 0; i < size; i++) sub.writeInt16BE(samples.readInt16LE(((start + i) * channels + c) * 2), at + 1 + i * 2);
    }
    const frame = Buffer.concat([Buffer.from(header), sub]);
    const crc = Buffer.alloc(2);
    crc.writeUInt16BE(crc16(frame));
    frames.push(frame, crc);
  }
  return Buffer.concat([Buffer.from('fLaC', 'latin1'), info, ...frames]);
}

/** Bytes that are no audio format: a deterministic pseudo-random sequence. */
export function noise(bytes: number, seed = 7): Buffer {
  const out = Buffer.alloc(bytes);
  let x = seed;
  for (let i = 0; i < bytes; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out[i] = x >> 16;
  }
  return out;
}
