// The demo page and the dashboard in a real browser: Debian's chromium driven by playwright-core
// (never a downloaded browser), against the stack users get: `pushline start` (its two comets,
// logic, job and Redis as real processes, dev mode as it sets it up), every port free-picked.
// Two pages in one room on different comets talk to each other;
// the dashboard shows tasks enqueued through the API and retries and deletes a dead letter.
// Screenshots go to test-artifacts/. Skipped, saying why, when /usr/bin/chromium is missing.
import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { Redis } from 'ioredis';
import { queueKeys } from '../../src/queue/keys.ts';
import { startLocalStack, type LocalStack } from '../helpers/local-stack.ts';
import { waitFor } from '../helpers/wait.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;
const available = existsSync(CHROMIUM);

describe.skipIf(!available)(`browser (${available ? 'chromium' : `skipped: ${CHROMIUM} missing, apt-get install chromium`})`, () => {
  let stack: LocalStack;
  let client: Redis;
  let browser: Browser;
  const auth = `Basic ${Buffer.from('admin:password').toString('base64')}`;
  const post = async (url: string, body: unknown) => {
    const res = await fetch(`${stack.logicUrl}${url}`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { statusCode: res.status, json: () => res.json() as Promise<{ task_id: string }> };
  };
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await startLocalStack({ env: { TASK_BACKOFF_MS: '50', TASK_BACKOFF_MAX_MS: '100', TASK_MAX_ATTEMPTS: '2' } });
    client = new Redis({ port: stack.redisPort, host: '127.0.0.1' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
    client?.disconnect();
    if (stack) {
      process.kill(-stack.child.pid!, 'SIGINT');
      await stack.exited;
      rmSync(stack.cwd, { recursive: true, force: true });
    }
  });

  it('two pages in one room, on different comets, exchange messages with their latency and see each other online', async () => {
    const context = await browser.newContext();
    const open = async (name: string) => {
      const page = await context.newPage();
      await page.goto(`${stack.logicUrl}/`);
      await page.fill('#user', name);
      await page.fill('#room', 'browser_room');
      await page.click('#joinButton');
      await page.waitForSelector('#state.ok');
      return page;
    };
    const alice = await open('alice');
    const bob = await open('bob');
    // The token route names the least-loaded comet: the second page lands on the other one.
    const alicesComet = await alice.textContent('#cometInfo');
    const bobsComet = await bob.textContent('#cometInfo');
    expect(alicesComet).toMatch(/connected through ws:\/\//);
    expect(bobsComet).not.toBe(alicesComet);
    // ... and both are the stack's two comets.
    const cometUrls = stack.comets.map((c) => `ws://localhost:${c.ws}`);
    expect(cometUrls.filter((u) => alicesComet!.includes(u) || bobsComet!.includes(u))).toHaveLength(2);

    await alice.fill('#text', 'hello from alice');
    await alice.selectOption('#priority', '5');
    await alice.click('#sendButton');
    await bob.waitForSelector('.msg:has-text("hello from alice")');
    const meta = await bob.textContent('.msg:has-text("hello from alice") .meta');
    expect(meta).toMatch(/^p5 · #\d+ · \d+ ms$/);
    await bob.fill('#text', 'hi alice, bob here');
    await bob.click('#sendButton');
    await alice.waitForSelector('.msg:has-text("hi alice, bob here")');
    expect(await alice.textContent('#latency')).toMatch(/end-to-end: last \d+ ms/);
    await alice.waitForFunction(() => document.querySelector('#online')?.textContent?.includes('bob'));
    expect(await alice.textContent('#online')).toContain('alice');
    await alice.screenshot({ path: `${ARTIFACTS}demo-alice.png`, fullPage: true });
    await bob.screenshot({ path: `${ARTIFACTS}demo-bob.png`, fullPage: true });
    await context.close();
  });

  it('the dashboard asks for credentials, shows tasks enqueued through the API, and retries and deletes dead letters', async () => {
    const anonymous = await browser.newContext();
    // (A page navigation would stop at the browser's own login prompt: ask the way a script does.)
    const refused = await anonymous.request.get(`${stack.logicUrl}/dashboard`);
    expect(refused.status()).toBe(401);
    expect(refused.headers()['www-authenticate']).toMatch(/^Basic/);
    await anonymous.close();

    const context = await browser.newContext({ httpCredentials: { username: 'admin', password: 'password' } });
    const page = await context.newPage();
    await page.goto(`${stack.logicUrl}/dashboard`);
    await page.waitForSelector('#state.ok');
    const before = Number((await page.textContent('#total'))!.split(' ')[0]);

    for (let i = 0; i < 3; i++) expect((await post('/generate', { type: 'echo', payload: { i }, priority: 4 })).statusCode).toBe(202);
    const doomed = (await (await post('/generate', { type: 'echo', payload: { fail_attempts: 99 }, priority: 2 })).json()).task_id;
    await page.waitForFunction((n) => Number(document.querySelector('#total')?.textContent?.split(' ')[0]) >= n + 4, before);
    await page.waitForSelector(`tr[data-task="${doomed}"]`, { timeout: 30_000 });
    expect(await page.textContent(`tr[data-task="${doomed}"]`)).toContain('fail attempt');
    expect(await page.textContent('#comets')).toContain('ws://');
    expect(await page.textContent('#workers')).toMatch(/\d+ × \d+/);
    // Groups: a group with limits is listed with them.
    const put = await fetch(`${stack.logicUrl}/groups/tenant-x`, { method: 'PUT', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ concurrency: 1, rate: { max: 5, per_ms: 1000 } }) });
    expect(put.status).toBe(200);
    await page.waitForSelector('tr[data-group="tenant-x"]');
    expect(await page.textContent('tr[data-group="tenant-x"]')).toContain('1 at once, 5 per 1000 ms');
    await page.screenshot({ path: `${ARTIFACTS}dashboard-dead.png`, fullPage: true });

    const tasks = queueKeys({ keyPrefix: '' });
    const diedAt = Number(await client.zscore(tasks.tasks.dead, doomed));
    await page.click(`tr[data-task="${doomed}"] button:has-text("retry")`);
    await page.waitForFunction((id) => document.querySelector('#state')?.textContent === `${id} queued`, doomed);
    // It left the dead set: with fail_attempts 99 it may already be back, but dead again later.
    await waitFor(async () => Number(await client.zscore(tasks.tasks.dead, doomed)) !== diedAt, 'the task out of the dead set or dead again');
    // It fails again (fail_attempts 99) and comes back; then it is deleted for good.
    await page.waitForSelector(`tr[data-task="${doomed}"]`, { timeout: 30_000 });
    await page.click(`tr[data-task="${doomed}"] button:has-text("delete")`);
    await page.waitForFunction((id) => document.querySelector('#state')?.textContent === `${id} deleted`, doomed);
    await waitFor(async () => (await client.exists(tasks.task(doomed))) === 0, 'the task hash is gone');
    await page.screenshot({ path: `${ARTIFACTS}dashboard-after.png`, fullPage: true });
    await context.close();
  });
  it('the dashboard searches tasks by status and type (GET /tasks) and links each to its task', async () => {
    const batch = await post('/generate/batch', { tasks: [{ type: 'echo', payload: { fail: 'permanent' } }, { type: 'echo', payload: { fine: true } }] });
    expect(batch.statusCode).toBe(202);
    const [failing, fine] = ((await batch.json()) as unknown as { tasks: { task_id: string }[] }).tasks.map((t) => t.task_id);
    const status = async (id: string) => (await (await fetch(`${stack.logicUrl}/tasks/${id}`, { headers: { authorization: auth } })).json()) as { status: string };
    await waitFor(async () => (await status(failing!)).status === 'failed' && (await status(fine!)).status === 'completed', 'both tasks finished', 30_000);

    const context = await browser.newContext({ httpCredentials: { username: 'admin', password: 'password' } });
    const page = await context.newPage();
    await page.goto(`${stack.logicUrl}/dashboard`);
    await page.waitForSelector('#state.ok');
    await page.selectOption('#searchStatus', 'failed');
    await page.fill('#searchType', 'echo');
    await page.click('#searchForm button[type=submit]');
    await page.waitForSelector(`tr[data-found="${failing}"]`);
    expect(await page.textContent(`tr[data-found="${failing}"]`)).toContain('echo asked to fail');
    expect(await page.getAttribute(`tr[data-found="${failing}"] a`, 'href')).toBe(`/tasks/${failing}`);
    expect(await page.$(`tr[data-found="${fine}"]`)).toBeNull();
    await page.screenshot({ path: `${ARTIFACTS}dashboard-search.png`, fullPage: true });

    await page.selectOption('#searchStatus', 'completed');
    await page.click('#searchForm button[type=submit]');
    await page.waitForSelector(`tr[data-found="${fine}"]`);
    expect(await page.$(`tr[data-found="${failing}"]`)).toBeNull();
    await context.close();
  });

  it('the dashboard shows delayed tasks waiting for their start and the recurring schedules', async () => {
    const context = await browser.newContext({ httpCredentials: { username: 'admin', password: 'password' } });
    const page = await context.newPage();
    await page.goto(`${stack.logicUrl}/dashboard`);
    await page.waitForSelector('#state.ok');
    const waiting = (await (await post('/generate', { type: 'echo', delay_ms: 3_600_000 })).json()).task_id;
    expect((await post('/schedules', { name: 'browser-nightly', cron: '0 3 * * *', tz: 'Europe/Paris', task: { type: 'echo' } })).statusCode).toBe(201);
    await page.waitForFunction(() => document.querySelector('#scheduled')?.textContent?.startsWith('1 scheduled'));
    await page.waitForSelector('tr[data-schedule="browser-nightly"]');
    expect(await page.textContent('tr[data-schedule="browser-nightly"]')).toContain('cron 0 3 * * * Europe/Paris');
    await page.screenshot({ path: `${ARTIFACTS}dashboard-schedules.png`, fullPage: true });
    await fetch(`${stack.logicUrl}/tasks/${waiting}`, { method: 'DELETE', headers: { authorization: auth } });
    await fetch(`${stack.logicUrl}/schedules/browser-nightly`, { method: 'DELETE', headers: { authorization: auth } });
    await page.waitForFunction(() => document.querySelector('#scheduled')?.textContent?.startsWith('0 scheduled'));
    await page.waitForFunction(() => !document.querySelector('tr[data-schedule="browser-nightly"]'));
    await context.close();
  });
});
