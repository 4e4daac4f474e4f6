// WebSocket frames (DESIGN §5): JSON text. Server → client frames are built as strings once
// per message and reused for every socket; close codes and error frames name the problem.

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
  frame: string;
  /** The message id, when the body is a JSON object carrying one. */
  id?: string;
}

/**
 * Wraps a message body for clients. A JSON body is embedded as is (no re-encoding); any
 * other body becomes a JSON string, so every frame stays valid JSON.
 */
export function serverMessageFrame(body: Buffer): ServerMessage {
  const text = body.toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    const id = parsed && typeof parsed === 'object' && 'id' in parsed ? String((parsed as { id: unknown }).id) : undefined;
    return { frame: `{"type":"serverMessages","payload":${text}}`, ...(id ? { id } : {}) };
  } catch {
    return { frame: `{"type":"serverMessages","payload":${JSON.stringify(text)}}` };
  }
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
export function splitAtBytes(items: readonly string[], maxBytes: number, perItem = 0, fixed = 2): string[][] {
  if (items.length === 1) return [[items[0]!]];
  const groups: string[][] = [];
  let group: string[] = [];
  let size = fixed;
  for (const item of items) {
    const bytes = Buffer.byteLength(item) + perItem + 1;
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

/** Server frames split at the byte bound, each group as one frame (an array when several). */
export function batchFrames(frames: readonly string[], maxBytes: number): string[] {
  return splitAtBytes(frames, maxBytes).map(batchFrame);
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
