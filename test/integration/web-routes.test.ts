// The demo and dashboard routes without a browser: what they refuse and why.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authHeader, testLogic } from '../helpers/logic.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';

let redis: TestRedis;
let logic: Awaited<ReturnType<typeof testLogic>>;
beforeAll(async () => {
  redis = await startTestRedis();
  logic = await testLogic(redis.port);
});
afterAll(async () => {
  await logic.app.close();
  await redis.close();
});

describe('web routes', () => {
  it('serves the demo page and the client library compiled for browsers', async () => {
    const page = await logic.app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    const client = await logic.app.inject({ method: 'GET', url: '/client.js' });
    expect(client.headers['content-type']).toContain('text/javascript');
    expect(client.body).toMatch(/export \{[^}]*PushlineClient/);
    expect(client.body).not.toContain('interface ');
  });

  it('outside dev mode the demo helpers refuse, pointing at POST /logic/token', async () => {
    expect((await logic.app.inject({ method: 'GET', url: '/demo/api/mode' })).json()).toEqual({ dev: false });
    const token = await logic.app.inject({ method: 'POST', url: '/demo/api/token', payload: { userId: 'u', roomId: 'r' } });
    expect(token.statusCode).toBe(404);
    expect(token.json().message).toContain('POST /logic/token');
    const bad = await logic.app.inject({ method: 'POST', url: '/demo/api/token', payload: { userId: 'has space', roomId: 'r' } });
    expect(bad.statusCode).toBe(400);
  });

  it('the dashboard and its API need the API credentials; acting on a task that is not dead is a 404', async () => {
    for (const url of ['/dashboard', '/dashboard/api/overview']) expect((await logic.app.inject({ method: 'GET', url })).statusCode).toBe(401);
    const overview = await logic.app.inject({ method: 'GET', url: '/dashboard/api/overview', headers: { authorization: authHeader } });
    expect(overview.statusCode).toBe(200);
    expect(overview.json()).toMatchObject({ queues: { tasks: { queued: 0, dead: 0 } }, priorities: expect.any(Array), comets: [], workers: [], dead: [] });
    const retry = await logic.app.inject({ method: 'POST', url: '/dashboard/api/dead/000000000042/retry', headers: { authorization: authHeader } });
    expect(retry.statusCode).toBe(404);
    expect(retry.json().message).toContain('not in the dead-letter set');
    const bad = await logic.app.inject({ method: 'DELETE', url: '/dashboard/api/dead/not-an-id', headers: { authorization: authHeader } });
    expect(bad.statusCode).toBe(400);
  });
});
