// A message's id and a room message's seq are the pipeline's own (DESIGN §4): through real
// logic → job → comet → WebSocket, a caller's `id`/`seq` never replaces them — logic refuses
// them, and the job's processor wins even for a task that reached the queue another way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysFromEnv, queueOptionsFromEnv } from '../../src/config/derive.ts';
import { TaskQueue } from '../../src/queue/task-queue.ts';
import { routingKeys } from '../../src/routing/keys.ts';
import { startPushStack, type PushStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import { serverMessages } from '../helpers/ws.ts';

let stack: PushStack;
let queue: TaskQueue;

beforeAll(async () => {
  stack = await startPushStack(1);
  queue = new TaskQueue(stack.client, keysFromEnv(stack.env), queueOptionsFromEnv(stack.env));
});
afterAll(async () => {
  await stack?.close();
});

describe('message id and seq', () => {
  it('logic refuses a caller id/seq; two broadcasts that look alike are both delivered with their own ids', async () => {
    const viewer = await stack.connect(stack.comets[0]!, 'u_ids', 'room_ids');
    const refused = await stack.post('/logic/broadcast', { message: { id: 'same', text: 'a' } });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().message).toMatch(/^message\.id is reserved/);
    const seqRefused = await stack.post('/generate', { type: 'push', room_id: 'room_ids', payload: { seq: 999999 } });
    expect(seqRefused.statusCode).toBe(400);
    expect(seqRefused.json().message).toMatch(/^payload\.seq is reserved/);

    const first = await stack.post('/logic/broadcast', { message: { text: 'same' } });
    const second = await stack.post('/logic/broadcast', { message: { text: 'same' } });
    const pushed = await stack.post('/generate', { type: 'push', room_id: 'room_ids', payload: { text: 'to the room' } });
    await waitFor(() => serverMessages(viewer).length === 3, 'three messages');
    const got = serverMessages(viewer);
    expect(got.map((m) => m.id).sort()).toEqual([first.json().task_id, second.json().task_id, pushed.json().task_id].sort());
    const roomMessage = got.find((m) => m.id === pushed.json().task_id)!;
    expect(roomMessage.seq).toBe(Number(await stack.client.get(routingKeys(stack.env.REDIS_KEY_PREFIX).roomSeq('room_ids'))));
    viewer.ws.close();
  });

  it('a task that reached the queue another way cannot override them either', async () => {
    const viewer = await stack.connect(stack.comets[0]!, 'u_other', 'room_other');
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { id } = await queue.enqueueOne({
        type: 'push',
        priority: 3,
        payload: JSON.stringify({ mode: 'room', roomId: 'room_other', message: { id: 'same', seq: 999999, text: `m${i}` } }),
        fields: { room_id: 'room_other' },
        sequenceKey: routingKeys(stack.env.REDIS_KEY_PREFIX).roomSeq('room_other'),
      });
      ids.push(id);
    }
    const direct = await queue.enqueueOne({ type: 'push', priority: 3, payload: JSON.stringify({ mode: 'users', userIds: ['u_other'], message: { seq: 7, text: 'to a user' } }) });
    await waitFor(() => serverMessages(viewer).length === 3, 'three messages');
    const got = serverMessages(viewer);
    expect(got.filter((m) => m.text !== 'to a user').map((m) => [m.id, m.seq, m.text]).sort()).toEqual([
      [ids[0], 1, 'm0'],
      [ids[1], 2, 'm1'],
    ]);
    // A message to users has no room seq: a caller's is dropped, not passed on as if it were one.
    expect(got.find((m) => m.text === 'to a user')).toEqual({ id: direct.id, text: 'to a user' });
    viewer.ws.close();
  });
});
