// The demo page and the dashboard in a real browser: Debian's chromium driven by playwright-core
// (never a downloaded browser). Two pages in one room on different comets talk to each other;
// the dashboard shows tasks enqueued through the API and retries and deletes a dead letter.
// Screenshots go to test-artifacts/. Skipped, saying why, when /usr/bin/chromium is missing.
import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysFromEnv } from '../../src/config/derive.ts';
import { startPushStack, type PushStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;
const available = existsSync(CHROMIUM);

describe.skipIf(!available)(`browser (${available ? 'chromium' : `skipped: ${CHROMIUM} missing, apt-get install chromium`})`, () => {
  let stack: PushStack;
  let browser: Browser;
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await startPushStack(2, { devMode: true, listen: true, env: { TASK_BACKOFF_MS: '50', TASK_BACKOFF_MAX_MS: '100', TASK_MAX_ATTEMPTS: '2' } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.close();
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

    for (let i = 0; i < 3; i++) expect((await stack.post('/generate', { type: 'echo', payload: { i }, priority: 4 })).statusCode).toBe(202);
    const doomed = (await stack.post('/generate', { type: 'echo', payload: { fail_attempts: 99 }, priority: 2 })).json().task_id as string;
    await page.waitForFunction((n) => Number(document.querySelector('#total')?.textContent?.split(' ')[0]) >= n + 4, before);
    await page.waitForSelector(`tr[data-task="${doomed}"]`, { timeout: 30_000 });
    expect(await page.textContent(`tr[data-task="${doomed}"]`)).toContain('fail attempt');
    expect(await page.textContent('#comets')).toContain('ws://');
    expect(await page.textContent('#workers')).toMatch(/\d+ × \d+/);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-dead.png`, fullPage: true });

    await page.click(`tr[data-task="${doomed}"] button:has-text("retry")`);
    await page.waitForFunction((id) => document.querySelector('#state')?.textContent === `${id} queued`, doomed);
    const tasks = keysFromEnv(stack.env);
    expect(await stack.client.zscore(tasks.tasks.dead, doomed)).toBeNull();
    // It fails again (fail_attempts 99) and comes back; then it is deleted for good.
    await page.waitForSelector(`tr[data-task="${doomed}"]`, { timeout: 30_000 });
    await page.click(`tr[data-task="${doomed}"] button:has-text("delete")`);
    await page.waitForFunction((id) => document.querySelector('#state')?.textContent === `${id} deleted`, doomed);
    await waitFor(async () => (await stack.client.exists(tasks.task(doomed))) === 0, 'the task hash is gone');
    await page.screenshot({ path: `${ARTIFACTS}dashboard-after.png`, fullPage: true });
    await context.close();
  });
});
