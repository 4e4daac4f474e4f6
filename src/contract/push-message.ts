// The push contract, in one place: what a `push` task carries (PushPayload), the message clients
// receive and its JSON body, goim's op codes, and the Proto that carries a body to the comets.
// logic, job, comet and the Kafka codec build and read push messages only through this module,
// so their shapes cannot drift apart; test/unit/push-contract.test.ts keeps it that way.
import type { ProtoMsg } from './comet-proto.ts';

/** goim's operation codes (Proto.op, PushMsg.operation). */
export const OP_MESSAGE = 4;
/** Kafka records only: a task that is not a push, as a JSON envelope (goim's job ignores it). */
export const OP_TASK = 1000;

/** Fields of a client message the pipeline sets itself (DESIGN §4): callers never replace them. */
export const RESERVED_MESSAGE_FIELDS = ['id', 'seq'] as const;

export type PushMode = 'room' | 'users' | 'broadcast';

/** A push task's payload (JSON in the task hash). */
export interface PushPayload {
  mode: PushMode;
  roomId?: string;
  userIds?: string[];
  /** What clients receive as the serverMessages payload (the pipeline adds `id`, and `seq` in rooms). */
  message: Record<string, unknown>;
}

/** Where a push goes, without its message. */
export type PushTarget = Omit<PushPayload, 'message'>;

export const roomTarget = (roomId: string): PushTarget => ({ mode: 'room', roomId });
export const usersTarget = (userIds: string[]): PushTarget => ({ mode: 'users', userIds });
export const broadcastTarget = (): PushTarget => ({ mode: 'broadcast' });

export function pushPayload(target: PushTarget, message: Record<string, unknown>): PushPayload {
  return { ...target, message };
}

/** The task payload text: a push is encoded once, where it enters the pipeline. */
export function encodePushPayload(payload: PushPayload): string {
  return JSON.stringify(payload);
}

/** Why a (parsed) task payload is not a push payload, or null when it is one. */
export function pushPayloadProblem(payload: unknown): string | null {
  const p = payload as Partial<PushPayload> | null;
  if (!p || typeof p !== 'object') return 'push payload must be an object';
  if (!p.message || typeof p.message !== 'object') return 'push payload.message must be an object';
  if (p.mode === 'room' && typeof p.roomId === 'string' && p.roomId) return null;
  if (p.mode === 'users' && Array.isArray(p.userIds) && p.userIds.length > 0) return null;
  if (p.mode === 'broadcast') return null;
  return 'push payload needs mode "room" with roomId, "users" with userIds, or "broadcast"';
}

/** A caller's message (/logic/push, /logic/broadcast, /generate) stamped with when it was accepted. */
export function stampedMessage(message: object, now = Date.now()): Record<string, unknown> {
  return { ...(message as Record<string, unknown>), ts: now };
}

export interface ChatMessageInput {
  roomId: string;
  userId: string;
  userName?: string | undefined;
  messages: readonly object[];
  priority?: number | undefined;
}

/** The seed's room message: /logic/send's body, and a client's upstream message on a comet. */
export function chatMessage(m: ChatMessageInput, now = Date.now()): Record<string, unknown> {
  return {
    roomId: m.roomId,
    userId: m.userId,
    ...(m.userName ? { userName: m.userName } : {}),
    messages: m.messages,
    ...(m.priority ? { priority: m.priority } : {}),
    ts: now,
  };
}

/**
 * The JSON body clients receive (inside a serverMessages frame), built once per message by job
 * and reused for history, offline lists and every comet. The id and a room message's seq are
 * the pipeline's own (DESIGN §4): a caller's `id`/`seq` (logic refuses them, but a task may
 * come another way: Kafka, a WS upstream) never replaces them, and a `seq` on a message that
 * has none of its own is dropped, not passed on.
 */
export function messageBody(id: string, seq: number, message: Record<string, unknown>): string {
  const { id: _callerId, seq: _callerSeq, ...fields } = message;
  return JSON.stringify({ id, ...(seq ? { seq } : {}), ...fields });
}

/**
 * The Proto job sends to comets. `id` travels beside the body, so a comet drops redelivered
 * messages without parsing the body; a Proto with `id` promises a JSON object body.
 */
export function messageProto(id: string, seq: number, body: string): ProtoMsg {
  return { ver: 1, op: OP_MESSAGE, seq, body: Buffer.from(body), id };
}
