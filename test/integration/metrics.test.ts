// /metrics on every process of a running stack (logic, job, two comets), after real traffic:
// the seed's names (grpc_calls_total, job_dispatch_*, active_comet_nodes, room_connection_count,
// redis latency) and the queue, task, HTTP and WebSocket metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { STACK_GRPC_TOKEN, startPushStack, type PushStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import { serverMessages } from '../helpers/ws.ts';

let stack: PushStack;
beforeAll(async () => {
  stack = await startPushStack();
});
afterAll(async () => {
  await stack?.close();
});

async function scrape(url: string): Promise<string> {
  const res = await request(url);
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toContain('text/plain');
  return res.body.text();
}

/** The value of one series, matched by name and a label subset; null when absent. */
function value(text: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    const rest = line.slice(name.length);
    if (Object.entries(labels).every(([k, v]) => rest.includes(`${k}="${v}"`))) return Number(line.split(' ').pop());
  }
  return null;
}

describe('metrics', () => {
  it('every process serves Prometheus text with what the traffic did', async () => {
    const [c0, c1] = stack.comets;
    const viewers = [await stack.connect(c0!, 'm1', 'metrics_room'), await stack.connect(c1!, 'm2', 'metrics_room')];
    const sent = await stack.post('/logic/send', { roomId: 'metrics_room', userId: 'm1', messages: [{ content: 'counted' }] });
    expect(sent.statusCode).toBe(202);
    await waitFor(() => viewers.every((v) => serverMessages(v).length === 1), 'delivered');
    const echo = await stack.post('/generate', { type: 'echo', payload: { n: 1 }, priority: 5 });
    await stack.finished(echo.json().task_id);
    await stack.finished(sent.json().task_id);

    const logic = (await stack.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(value(logic, 'http_requests_total', { method: 'POST', route: '/logic/send', status: '202' })).toBe(1);
    expect(value(logic, 'http_requests_total', { route: '/generate', status: '202' })).toBe(1);
    expect(value(logic, 'redis_command_duration_seconds_count', { command: 'enqueue' })).toBeGreaterThanOrEqual(2);
    expect(value(logic, 'pushline_queue_depth', { stage: 'tasks', state: 'dead' })).toBe(0);
    expect(value(logic, 'pushline_queue_waiting', { priority: '5' })).not.toBeNull();
    expect(value(logic, 'process_cpu_seconds_total', { component: 'logic' })).toBeGreaterThan(0);

    const job = await scrape(`http://127.0.0.1:${stack.job.metricsPort}/metrics`);
    expect(value(job, 'grpc_calls_total', { service: 'comet', name: 'BroadcastRoom', status: 'success' })).toBeGreaterThanOrEqual(2);
    for (const c of stack.comets) expect(value(job, 'job_dispatch_success_total', { comet: c.cometId })).toBeGreaterThanOrEqual(1);
    expect(value(job, 'active_comet_nodes')).toBe(2);
    expect(value(job, 'room_connection_count_count')).toBeGreaterThanOrEqual(1);
    expect(value(job, 'room_connection_count_sum')).toBeGreaterThanOrEqual(2);
    // Batch sizes: the room message went through one routing read and one call per comet.
    expect(value(job, 'pushline_push_batch_messages_count', { stage: 'routing' })).toBeGreaterThanOrEqual(1);
    expect(value(job, 'pushline_push_batch_messages_count', { stage: 'grpc_call' })).toBeGreaterThanOrEqual(2);
    expect(value(job, 'pushline_push_batch_messages_sum', { stage: 'grpc_call' })).toBeGreaterThanOrEqual(2);
    expect(value(job, 'redis_command_duration_seconds_count', { command: 'get_room_connections' })).toBeGreaterThanOrEqual(1);
    expect(value(job, 'redis_command_duration_seconds_count', { command: 'claim' })).toBeGreaterThanOrEqual(1);
    expect(value(job, 'pushline_tasks_total', { type: 'echo', outcome: 'completed' })).toBe(1);
    expect(value(job, 'pushline_tasks_total', { type: 'push', outcome: 'completed' })).toBeGreaterThanOrEqual(1);
    expect(value(job, 'pushline_task_wait_seconds_count', { type: 'echo', priority: '5' })).toBe(1);
    expect(value(job, 'pushline_task_processing_seconds_count', { type: 'echo', outcome: 'completed' })).toBe(1);
    expect(job).toContain('# TYPE pushline_webhooks_total counter');

    const served = new Set<string>();
    const names = (text: string) => {
      // Declared families count too: a labelled counter has no series before its first event.
      for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
        served.add(name!);
        if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) served.add(name! + suffix);
      }
    };
    names(logic);
    names(job);
    for (const [i, c] of stack.comets.entries()) {
      const comet = await scrape(`http://127.0.0.1:${c.wsPort}/metrics`);
      names(comet);
      expect(value(comet, 'pushline_ws_connections', { component: 'comet' })).toBe(1);
      expect(value(comet, 'grpc_calls_total', { name: 'BroadcastRoom', status: 'success' })).toBeGreaterThanOrEqual(1);
      expect(value(comet, 'pushline_ws_frames_sent_total')).toBeGreaterThanOrEqual(1);
      expect(value(comet, 'pushline_ws_bytes_sent_total')).toBeGreaterThan(0);
      expect(value(comet, 'pushline_ws_slow_consumer_closes_total')).toBe(0);
      viewers[i]!.ws.close();
    }

    // The Grafana dashboard asks only for series the processes really serve.
    const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/dashboards/pushline.json', import.meta.url), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
    const asked = dashboard.panels
      .flatMap((p) => p.targets.map((t) => t.expr))
      .map((e) => e.replace(/\bby \([^)]*\)/g, '').replace(/\{[^}]*\}/g, '{}'))
      .flatMap((e) => e.match(/[a-z_][a-z0-9_]*(?=[{[)])/g) ?? []);
    const metricNames = [...new Set(asked)].filter((n) => !['rate', 'increase', 'sum', 'max', 'histogram_quantile', 'by'].includes(n));
    expect(metricNames.length).toBeGreaterThan(10);
    expect(metricNames.filter((n) => !served.has(n))).toEqual([]);
  });

  it('a bad gRPC request is counted as failed on the comet; unknown paths on the job metrics port get 404', async () => {
    const { CometClients } = await import('../../src/job/comet-clients.ts');
    const clients = new CometClients({ deadlineMs: 2000, token: STACK_GRPC_TOKEN });
    const comet = stack.comets[0]!;
    await expect(clients.pushMsg(comet.cometId, [], { op: 4, body: Buffer.from('{}') })).rejects.toMatchObject({ code: 3 });
    clients.close();
    const text = await scrape(`http://127.0.0.1:${comet.wsPort}/metrics`);
    expect(value(text, 'grpc_calls_total', { name: 'PushMsg', status: 'failed' })).toBe(1);
    const res = await request(`http://127.0.0.1:${stack.job.metricsPort}/nope`);
    expect(res.statusCode).toBe(404);
    expect(await res.body.text()).toContain('GET /metrics');
  });
});
