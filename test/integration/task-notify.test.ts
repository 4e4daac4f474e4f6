// Task status notifications (a task submitted with user_id / room_id) and `type: "push"` through
// POST /generate, end to end: logic → Redis → job → gRPC → comets → WebSocket clients.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysFromEnv } from '../../src/config/derive.ts';
import { startPushStack, type PushStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import { serverMessages, type WsClient } from '../helpers/ws.ts';

let stack: PushStack;
beforeAll(async () => {
  stack = await startPushStack();
});
afterAll(async () => {
  await stack?.close();
});

const statuses = (c: WsClient, taskId: string) =>
  serverMessages(c).filter((m) => m.type === 'task_status' && m.task_id === taskId) as Record<string, unknown>[];

describe('task status notifications', () => {
  it('a task with user_id tells that user queued → processing (with progress) → completed, with the result', async () => {
    const [c0, c1] = stack.comets;
    const phone = await stack.connect(c0!, 'ann', 'lobby');
    const laptop = await stack.connect(c1!, 'ann', 'elsewhere');
    const other = await stack.connect(c0!, 'ben', 'lobby');
    const res = await stack.post('/generate', { type: 'echo', payload: { delay_ms: 300, hello: 'ann' }, user_id: 'ann', priority: 4 });
    expect(res.statusCode).toBe(202);
    const id = res.json().task_id as string;
    // `queued` is a push task of its own that logic enqueues (routes/tasks.ts), not part of the
    // job's per-task chain that ends with `completed`: it can arrive after it, so wait for both.
    const has = (c: WsClient, status: string) => statuses(c, id).some((m) => m.status === status);
    await waitFor(() => has(phone, 'queued') && has(phone, 'completed') && has(laptop, 'completed'), 'queued and completed on the phone, completed on the laptop');
    const seen = statuses(phone, id);
    expect(seen.map((m) => m.status).sort()).toEqual(['completed', 'processing', 'processing', 'queued']);
    // queued may be overtaken by processing (separate queue entries); `at` orders them.
    const ordered = [...seen].sort((a, b) => Number(a.at) - Number(b.at)).map((m) => m.status);
    expect(ordered.at(-1)).toBe('completed');
    expect(seen.find((m) => m.progress !== undefined)).toMatchObject({ status: 'processing', progress: 0.5, note: 'halfway' });
    expect(seen.find((m) => m.status === 'completed')).toMatchObject({ task_type: 'echo', priority: 4, attempt: 1, result: { delay_ms: 300, hello: 'ann' } });
    expect(seen.find((m) => m.status === 'queued')).toMatchObject({ priority: 4 });
    // A message id is never reused, so the comet's duplicate filter drops none of them.
    expect(new Set(seen.map((m) => m.id)).size).toBe(seen.length);
    expect(statuses(other, id)).toEqual([]);
    // What the notification said is what the API says.
    expect((await stack.finished(id)).status).toBe('completed');
    for (const c of [phone, laptop, other]) c.ws.close();
  });

  it('a delayed task with user_id says scheduled (with its start) first, then runs at its start', async () => {
    const phone = await stack.connect(stack.comets[0]!, 'cal', 'lobby');
    const res = await stack.post('/generate', { type: 'echo', payload: { n: 1 }, user_id: 'cal', delay_ms: 500 });
    expect(res.json().status).toBe('scheduled');
    const id = res.json().task_id as string;
    // `scheduled` is logic's own push task, `completed` the job's: either may arrive first.
    await waitFor(() => statuses(phone, id).some((m) => m.status === 'scheduled') && statuses(phone, id).some((m) => m.status === 'completed'), 'scheduled and completed');
    const first = statuses(phone, id).find((m) => m.attempt === 0);
    const hash = await stack.finished(id);
    expect(first).toMatchObject({ status: 'scheduled', run_at: new Date(Number(hash.run_at)).toISOString() });
    expect(statuses(phone, id).some((m) => m.status === 'queued')).toBe(false);
    phone.ws.close();
  });

  it('a task with room_id tells everyone in the room, on both comets, including a retry and the final failure', async () => {
    const [c0, c1] = stack.comets;
    const a = await stack.connect(c0!, 'u1', 'studio');
    const b = await stack.connect(c1!, 'u2', 'studio');
    const res = await stack.post('/generate', { type: 'echo', payload: { fail: 'permanent' }, room_id: 'studio' });
    const id = res.json().task_id as string;
    await waitFor(() => [a, b].every((c) => statuses(c, id).some((m) => m.status === 'failed')), 'failed in the room');
    expect(statuses(b, id).find((m) => m.status === 'failed')).toMatchObject({ error: expect.stringContaining('permanent') });

    const retried = await stack.post('/generate', { type: 'echo', payload: { fail_attempts: 1 }, room_id: 'studio' });
    const rid = retried.json().task_id as string;
    await waitFor(() => statuses(a, rid).some((m) => m.status === 'completed'), 'completed after a retry', 30_000);
    const retry = statuses(a, rid).find((m) => m.status === 'queued' && m.attempt === 1);
    expect(retry).toMatchObject({ retry_in_ms: expect.any(Number), error: expect.stringContaining('fail attempt 1') });
    expect(statuses(a, rid).find((m) => m.status === 'completed')).toMatchObject({ attempt: 2 });
    a.ws.close();
    b.ws.close();
  });

  it('tasks without user_id / room_id notify nobody', async () => {
    const c = await stack.connect(stack.comets[0]!, 'quiet', 'quiet_room');
    const res = await stack.post('/generate', { type: 'echo', payload: {} });
    await stack.finished(res.json().task_id);
    const marker = await stack.post('/generate', { type: 'push', room_id: 'quiet_room', payload: { text: 'marker' } });
    await waitFor(() => serverMessages(c).length > 0, 'the marker push');
    expect(serverMessages(c).map((m) => m.text)).toEqual(['marker']);
    expect(marker.statusCode).toBe(202);
    c.ws.close();
  });
});

describe('type "push" through /generate', () => {
  it('delivers payload to room_id (with a room seq) or to user_id, records the outcome, and sends no status messages', async () => {
    const [c0, c1] = stack.comets;
    const a = await stack.connect(c0!, 'p1', 'gen_room');
    const b = await stack.connect(c1!, 'p2', 'gen_room');
    const res = await stack.post('/generate', { type: 'push', room_id: 'gen_room', payload: { text: 'hello room' }, priority: 5 });
    expect(res.statusCode).toBe(202);
    await waitFor(() => serverMessages(a).length === 1 && serverMessages(b).length === 1, 'room push');
    expect(serverMessages(b)[0]).toMatchObject({ id: res.json().task_id, text: 'hello room', seq: expect.any(Number) });
    const hash = await stack.finished(res.json().task_id);
    expect(JSON.parse(hash.result!)).toMatchObject({ sent: 2, failed: 0, comet_nodes: 2 });

    const direct = await stack.post('/generate', { type: 'push', user_id: 'p2', payload: { text: 'just p2' } });
    expect(direct.statusCode).toBe(202);
    await waitFor(() => serverMessages(b).length === 2, 'user push');
    expect(serverMessages(b)[1]).toMatchObject({ text: 'just p2' });
    expect(serverMessages(a)).toHaveLength(1);
    a.ws.close();
    b.ws.close();
  });

  it.each([
    [{ type: 'push', payload: { text: 'x' } }, 'room_id', 'a push needs room_id or user_id'],
    [{ type: 'push', room_id: 'r', user_id: 'u', payload: { text: 'x' } }, 'user_id', 'not both'],
    [{ type: 'push', room_id: 'r' }, 'payload', 'a push needs payload'],
    [{ type: 'push', room_id: 'r', payload: ['not', 'an', 'object'] }, 'payload', 'a push needs payload'],
    [{ type: 'push', room_id: 'bad room!', payload: {} }, 'room_id', ''],
  ])('refuses %j with 400 naming %s; nothing is queued', async (body, field, text) => {
    // The id counter moves with every enqueue, even of a task already consumed.
    const counter = keysFromEnv(stack.env).taskSeq;
    const before = await stack.client.get(counter);
    expect(Number(before)).toBeGreaterThan(0);
    const res = await stack.post('/generate', body);
    expect(res.statusCode).toBe(400);
    const fields = res.json().fields as { field: string; message: string }[];
    expect(fields.some((f) => f.field === field && f.message.includes(text))).toBe(true);
    expect(await stack.client.get(counter)).toBe(before);
  });
});
