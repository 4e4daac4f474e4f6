// The results stage: POST the signed task outcome to its hook_url. 2xx ends it; 408/429/5xx
// and network trouble retry with backoff (honouring Retry-After); other answers end it as
// failed. The outcome is written on the task hash as webhook_* fields.
import type { Dispatcher } from 'undici';
import type { Logger } from '../util/log.ts';
import type { Handler, Verdict } from '../queue/consumer.ts';
import { webhookBody } from '../queue/task-view.ts';
import { deliverWebhook } from '../webhook/deliver.ts';
import { maxAttemptsOf, retryOrDead, type RetryPolicy } from './task-handler.ts';

export interface WebhookHandlerOptions {
  secret: string;
  timeoutMs: number;
  policy: RetryPolicy;
  dispatcher: Dispatcher;
  log: Logger;
}

export function createWebhookHandler(options: WebhookHandlerOptions): Handler {
  const { policy, log } = options;
  return async (task): Promise<Verdict> => {
    const url = task.hash.hook_url ?? '';
    const body = JSON.stringify(webhookBody(task.hash));
    const delivery = await deliverWebhook({
      url,
      body,
      secret: options.secret,
      timeoutMs: options.timeoutMs,
      dispatcher: options.dispatcher,
      headers: { 'x-pushline-task-id': task.id, 'x-pushline-delivery-attempt': String(task.attempt) },
    });
    const where = { task: task.id, attempt: task.attempt, status: delivery.status };
    if (delivery.ok) {
      log.info(where, `webhook for task ${task.id} delivered (${delivery.status})`);
      return { outcome: 'completed', fields: { webhook_code: String(delivery.status) } };
    }
    const fields: Record<string, string> = { webhook_error: delivery.error };
    if (delivery.status !== undefined) fields.webhook_code = String(delivery.status);
    if (!delivery.retriable) {
      log.warn({ ...where, error: delivery.error }, `webhook for task ${task.id} failed for good`);
      return { outcome: 'failed', fields };
    }
    const verdict = retryOrDead(
      task.attempt,
      maxAttemptsOf(task, policy.maxAttempts, 'webhook_max_attempts'),
      policy,
      fields,
      delivery.retryAfterMs ?? 0,
    );
    log.warn({ ...where, error: delivery.error, delayMs: verdict.delayMs }, `webhook for task ${task.id}: ${verdict.outcome}`);
    return verdict;
  };
}
