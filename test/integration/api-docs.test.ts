// OpenAPI generated from the route schemas, and the docs page that shows it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testLogic } from '../helpers/logic.ts';
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

  it('/docs serves the page without credentials', async () => {
    const res = await logic.app.inject({ method: 'GET', url: '/docs' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.body).toContain('swagger');
  });
});
