// Issue 11, item 3: a room message's task hash holds what at-least-once delivery and the API need,
// and nothing twice: /logic/send no longer copies roomId / userId into room_id / user_id fields
// (the payload holds both). GET /tasks/:id still shows them, read from the payload.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { keysFromEnv } from '../../src/config/derive.ts';
import { authHeader } from '../helpers/logic.ts';
import { startPushStack, type PushStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import { serverMessages } from '../helpers/ws.ts';

let stack: PushStack;
beforeAll(async () => {
  stack = await startPushStack(1);
});
afterAll(async () => stack?.close());

it('a /logic/send hash has no room_id / user_id copies; the viewer, the result and GET /tasks/:id are as before', async () => {
  const viewer = await stack.connect(stack.comets[0]!, 'viewer', 'lean_room');
  const res = await stack.post('/logic/send', { roomId: 'lean_room', userId: 'host', userName: 'Host', messages: [{ content: 'hi' }] });
  expect(res.statusCode).toBe(202);
  const id = res.json().task_id as string;
  await waitFor(() => serverMessages(viewer).length === 1, 'the viewer got the message');
  expect(serverMessages(viewer)[0]).toMatchObject({ id, roomId: 'lean_room', userId: 'host', userName: 'Host', seq: 1, messages: [{ content: 'hi' }] });

  const hash = await stack.finished(id);
  expect(Object.keys(hash).sort()).toEqual(['attempts', 'created_at', 'finished_at', 'id', 'payload', 'priority', 'request_id', 'result', 'seq', 'started_at', 'status', 'type']);
  expect(await stack.client.hexists(keysFromEnv(stack.env).task(id), 'room_id')).toBe(0);

  const view = await stack.app.inject({ method: 'GET', url: `/tasks/${id}`, headers: { authorization: authHeader } });
  expect(view.statusCode).toBe(200);
  expect(view.json()).toMatchObject({ task_id: id, type: 'push', status: 'completed', user_id: 'host', room_id: 'lean_room', result: { sent: 1, failed: 0 } });
  viewer.ws.close();
});

it('a push through /generate keeps the room_id it was given; /logic/push and /logic/broadcast show no address', async () => {
  const generated = await stack.post('/generate', { type: 'push', room_id: 'other_room', payload: { text: 'x' } });
  const pushed = await stack.post('/logic/push', { userIds: ['u1'], message: { text: 'y' } });
  for (const res of [generated, pushed]) expect(res.statusCode).toBe(202);
  await stack.finished(generated.json().task_id);
  await stack.finished(pushed.json().task_id);
  const view = async (id: string) => (await stack.app.inject({ method: 'GET', url: `/tasks/${id}`, headers: { authorization: authHeader } })).json();
  const g = await view(generated.json().task_id);
  expect(g.room_id).toBe('other_room');
  expect(g.user_id).toBeUndefined();
  const p = await view(pushed.json().task_id);
  expect(p.room_id).toBeUndefined();
  expect(p.user_id).toBeUndefined();
});
