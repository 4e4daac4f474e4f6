// GET /tasks/:id shows what was asked for: for an audio task that is its URL (stored in its own
// hash field, not in payload), so the view must not say `payload: null`.
import { describe, expect, it } from 'vitest';
import { authHeader, testLogic } from '../helpers/logic.ts';
import { useTestRedis } from '../helpers/redis.ts';

const shared = useTestRedis();

describe('GET /tasks/:id', () => {
  it('shows an audio task with its URL', async () => {
    const logic = await testLogic(shared.redis.port);
    try {
      const url = 'https://audio.example.com/seed.wav';
      const created = await logic.app.inject({ method: 'POST', url: '/generate', headers: { authorization: authHeader }, payload: { audio: url, priority: 5 } });
      expect(created.statusCode).toBe(202);
      const view = await logic.app.inject({ method: 'GET', url: `/tasks/${created.json().task_id}`, headers: { authorization: authHeader } });
      expect(view.statusCode).toBe(200);
      expect(view.json()).toMatchObject({ type: 'audio', audio: url, payload: { audio: url } });
    } finally {
      await logic.close();
    }
  });

  it('shows an echo task with its payload as given', async () => {
    const logic = await testLogic(shared.redis.port);
    try {
      const created = await logic.app.inject({ method: 'POST', url: '/generate', headers: { authorization: authHeader }, payload: { type: 'echo', payload: { hello: 'world' } } });
      const view = await logic.app.inject({ method: 'GET', url: `/tasks/${created.json().task_id}`, headers: { authorization: authHeader } });
      expect(view.json().payload).toEqual({ hello: 'world' });
      expect(view.json()).not.toHaveProperty('audio');
    } finally {
      await logic.close();
    }
  });
});
