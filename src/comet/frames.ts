// WebSocket frames (DESIGN §5): JSON text. A pushed message is kept as the bytes of its payload
// and framed once per batch: `{"type":"serverMessages","payload":…}`, or a JSON array of such
// frames when a batch holds several, built in one buffer that every socket is given; close
// codes and error frames name the problem.

export const CLOSE = {
  /** Comet shutting down (SIGTERM): reconnect elsewhere. */
  goingAway: 1001,
  /** A text frame that is not valid UTF-8 (ws closes with it by itself). */
  invalidUtf8: 1007,
  /** A frame larger than WS_MAX_FRAME_BYTES (ws closes with it by itself). */
  tooBig: 1009,
  /** The connection could not be registered in Redis or set up: reconnect later. */
  internalError: 1011,
  /**
   * The socket could not keep up: its send buffer stayed above COMET_MAX_BUFFER_BYTES for
   * COMET_SLOW_CONSUMER_MS, or passed the hard cap (8× that) at any time.
   */
  slowConsumer: 4008,
  /** The client kept sending malformed frames. */
  protocolError: 4002,
  /** The client kept sending heartbeats far above any sane rate after being told rate_limited. */
  rateLimited: 4029,
} as const;

export type ErrorCode = 'invalid_json' | 'invalid_frame' | 'unknown_type' | 'binary_not_supported' | 'rate_limited' | 'unavailable';

export function errorFrame(code: ErrorCode, message: string): string {
  return JSON.stringify({ type: 'error', payload: { code, message } });
}

export interface ServerMessage {
  /** The serverMessages payload as JSON text (UTF-8 bytes), embedded in frames as is. */
  payload: Buffer;
  /** The message id: redelivered messages are dropped by it. */
  id?: string;
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * A message body as clients get it. A body that comes with its id (job's Proto.id) is job's
 * JSON object: embedded unread. Any other body (goim callers) is read once: embedded when it
 * is JSON, with its `id` when it has one, else sent as a JSON string, so every frame stays
 * valid JSON.
 */
export function serverMessage(body: Buffer, id?: string): ServerMessage {
  if (id && body[0] === OPEN_BRACE && body[body.length - 1] === CLOSE_BRACE) return { payload: body, id };
  const text = body.toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    const own = parsed && typeof parsed === 'object' && 'id' in parsed ? String((parsed as { id: unknown }).id) : undefined;
    const found = id || own;
    return { payload: body, ...(found ? { id: found } : {}) };
  } catch {
    return { payload: Buffer.from(JSON.stringify(text)), ...(id ? { id } : {}) };
  }
}

const MESSAGE_HEAD = Buffer.from('{"type":"serverMessages","payload":');
const MESSAGE_TAIL = Buffer.from('}');
const COMMA = Buffer.from(',');
const ARRAY_OPEN = Buffer.from('[');
const ARRAY_CLOSE = Buffer.from(']');

/** One frame for messages in order: a serverMessages frame, or an array of them for several. */
export function serverMessagesFrame(payloads: readonly Buffer[]): Buffer {
  const parts: Buffer[] = payloads.length === 1 ? [] : [ARRAY_OPEN];
  for (const [i, payload] of payloads.entries()) {
    if (i > 0) parts.push(COMMA);
    parts.push(MESSAGE_HEAD, payload, MESSAGE_TAIL);
  }
  if (payloads.length !== 1) parts.push(ARRAY_CLOSE);
  return Buffer.concat(parts);
}

/** Messages in order, split at the byte bound, each part as one frame. */
export function serverMessagesFrames(payloads: readonly Buffer[], maxBytes: number): Buffer[] {
  return splitAtBytes(payloads, maxBytes, MESSAGE_HEAD.length + MESSAGE_TAIL.length).map(serverMessagesFrame);
}

/** Several messages for one room within the batch window travel as one JSON array frame. */
export function batchFrame(frames: readonly string[]): string {
  return frames.length === 1 ? frames[0]! : `[${frames.join(',')}]`;
}

/**
 * Groups items in order so that each group, joined with commas, plus `perItem` bytes of
 * wrapping per item and `fixed` bytes around the group, stays within `maxBytes`. An item too
 * large on its own still gets a group of its own: a big message is delivered, not dropped.
 */
export function splitAtBytes<T extends string | Buffer>(items: readonly T[], maxBytes: number, perItem = 0, fixed = 2): T[][] {
  if (items.length === 1) return [[items[0]!]];
  const groups: T[][] = [];
  let group: T[] = [];
  let size = fixed;
  for (const item of items) {
    const bytes = (typeof item === 'string' ? Buffer.byteLength(item) : item.length) + perItem + 1;
    if (group.length > 0 && size + bytes > maxBytes) {
      groups.push(group);
      group = [];
      size = fixed;
    }
    group.push(item);
    size += bytes;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

const SERVER_MESSAGE_HEAD = '{"type":"serverMessages","payload":';
/** A stored message (a JSON text: offline list) as a serverMessages frame. */
export const storedMessageFrame = (json: string) => `${SERVER_MESSAGE_HEAD}${json}}`;
/** Bytes a stored message gains in its serverMessages frame. */
export const STORED_MESSAGE_OVERHEAD = SERVER_MESSAGE_HEAD.length + 1;

/**
 * One part of a history answer. A long history comes in several frames, oldest first, each
 * within the byte bound; `complete` is true on the last one only.
 */
export function historyFrame(roomId: string, sinceSeq: number, messages: readonly string[], complete: boolean): string {
  return `{"type":"history","payload":{"roomId":${JSON.stringify(roomId)},"sinceSeq":${sinceSeq},"messages":[${messages.join(',')}],"complete":${complete}}}`;
}

/** Bytes of a history frame around its messages (room id excluded: add its JSON length). */
export const HISTORY_FRAME_OVERHEAD = historyFrame('', Number.MAX_SAFE_INTEGER, [], false).length;
