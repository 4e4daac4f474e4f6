// The demo, dashboard and API-docs routes without a browser: what they serve, what they refuse and why.
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

describe('API docs', () => {
  it('/docs/json lists every route with the body schema the route validates, and basic auth', async () => {
    const res = await logic.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown>; required?: string[] } }> }; security?: unknown[] }>>;
      components: { securitySchemes: Record<string, { scheme: string }> };
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/health', '/generate', '/tasks/{id}', '/logic/send', '/logic/push', '/logic/broadcast', '/logic/token']));
    expect(Object.keys(doc.paths)).not.toContain('/metrics');
    const generate = doc.paths['/generate']!.post!.requestBody!.content['application/json']!.schema;
    expect(generate.properties.priority).toEqual({ type: 'integer', minimum: 1, maximum: 5 });
    expect(Object.keys(generate.properties)).toEqual(expect.arrayContaining(['type', 'audio', 'hook_url', 'payload', 'user_id', 'room_id']));
    const send = doc.paths['/logic/send']!.post!.requestBody!.content['application/json']!.schema;
    expect(send.required).toEqual(expect.arrayContaining(['roomId', 'userId', 'messages']));
    expect(doc.components.securitySchemes.basicAuth!.scheme).toBe('basic');
    expect(doc.paths['/health']!.get!.security).toEqual([]);
  });

  it('/docs/json documents timeout_ms, POST /generate/batch and GET /tasks with its query parameters', async () => {
    type Op = { parameters?: { name: string; in: string; required?: boolean }[]; requestBody?: { content: Record<string, { schema: { properties: Record<string, Record<string, unknown>> } }> }; responses: Record<string, unknown> };
    const doc = (await logic.app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, Op>> };
    const generate = doc.paths['/generate']!.post!.requestBody!.content['application/json']!.schema;
    expect(generate.properties.timeout_ms).toEqual({ type: 'integer', minimum: 1, maximum: 86_400_000 });
    const batch = doc.paths['/generate/batch']!.post!;
    expect(batch.requestBody!.content['application/json']!.schema.properties.tasks).toMatchObject({ type: 'array', minItems: 1, maxItems: 1000 });
    expect(Object.keys(batch.responses)).toEqual(expect.arrayContaining(['202', '207']));
    const search = doc.paths['/tasks']!.get!;
    expect(search.parameters!.map((p) => [p.name, p.in, p.required ?? false])).toEqual([
      ['status', 'query', true], ['type', 'query', false], ['group', 'query', false], ['priority', 'query', false], ['limit', 'query', false], ['cursor', 'query', false],
    ]);
  });

  it('/docs serves the page without credentials', async () => {
    const res = await logic.app.inject({ method: 'GET', url: '/docs' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.body).toContain('swagger');
  });
});
