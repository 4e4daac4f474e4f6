// OpenAPI for the HTTP API, generated from the routes' own zod schemas (@fastify/swagger with the
// zod type provider's transform), served as JSON at /docs/json and as a page at /docs. Nothing is
// written by hand, so the document cannot drift from what the routes validate.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';

/** Register before the routes: @fastify/swagger collects them as they are added. */
export async function registerApiDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'pushline API',
        description:
          'Tasks with a priority 1..5 (5 highest) on a Redis priority queue, real-time pushes through comet nodes. ' +
          'Errors are JSON: {"error": code, "message", "fields"?: [{field, message}]}.',
        version: '0.1.0',
      },
      components: { securitySchemes: { basicAuth: { type: 'http', scheme: 'basic', description: 'API_USERNAME / API_PASSWORD' } } },
      security: [{ basicAuth: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true } });
}
