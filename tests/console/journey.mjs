// A person's journey through the web console in a real browser (Debian's chromium, driven by playwright-core).
// Started by tests/it/console.rs, which runs the service and scripts the fake LLM, with:
//   CONSOLE_BASE_URL      http://127.0.0.1:PORT (the console is at /)
//   CONSOLE_ARTIFACTS     directory for screenshots
//   CONSOLE_SQLITE_PATH   a SQLite file with an `items` table (one name is an <img onerror> payload)
//   CONSOLE_LLM_URL       the fake LLM's OpenAI-compatible base URL
//   CHROMIUM_PATH         default /usr/bin/chromium
// Exits non-zero on the first failed assertion, or when a dialog opened, a page error or a CSP violation happened.

import { chromium } from 'playwright-core';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const base = process.env.CONSOLE_BASE_URL;
const artifacts = process.env.CONSOLE_ARTIFACTS || 'console-artifacts';
const sqlitePath = process.env.CONSOLE_SQLITE_PATH;
const llmUrl = process.env.CONSOLE_LLM_URL;
if (!base || !sqlitePath || !llmUrl) {
  console.error('CONSOLE_BASE_URL, CONSOLE_SQLITE_PATH and CONSOLE_LLM_URL must be set');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
rmSync(join(artifacts, 'failure.png'), { force: true });

const XSS_CELL = '<img src=x onerror=alert(1)>';
const XSS_EXPLANATION = '<script>alert("explained")</script>';
const PASSWORD = 'correct horse battery';
const EMAIL = `console-${Date.now()}@example.com`;
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
  + "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

const started = Date.now();
const step = (name) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${name}`);
function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

const problems = [];
let refreshRequests = 0;
let refreshRefusalsExpected = false;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
const page = await context.newPage();
page.setDefaultTimeout(20_000);
page.on('dialog', async (dialog) => {
  problems.push(`a dialog opened: ${dialog.type()} ${dialog.message()}`);
  await dialog.dismiss();
});
page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
page.on('console', (message) => {
  // Refused requests (a wrong password) are logged by the browser itself; anything else is a problem.
  if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
    problems.push(`console error: ${message.text()}`);
  }
});
page.on('request', (request) => {
  if (request.url().endsWith('/api/v1/auth/refresh')) refreshRequests += 1;
});
page.on('response', (response) => {
  if (response.url().endsWith('/api/v1/auth/refresh') && response.status() !== 200 && !refreshRefusalsExpected) {
    problems.push(`a refresh was refused: ${response.status()}`);
  }
});

// Cuts the next question's stream after its first three events (optionally with `event: reconnect`); the console
// must resume it with Last-Event-ID.
let cutNextStream = null;
await page.route('**/api/v1/chat/stream**', async (route) => {
  const request = route.request();
  if (!cutNextStream || request.headers()['last-event-id']) return route.continue();
  const mode = cutNextStream;
  cutNextStream = null;
  const response = await route.fetch();
  const events = (await response.text()).split(/\n\n/).filter((e) => e.trim() && !e.startsWith(':'));
  let body = `${events.slice(0, 3).join('\n\n')}\n\n`;
  if (mode === 'reconnect') body += 'event: reconnect\ndata: {"type":"reconnect","message":"restarting"}\n\n';
  await route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream',
    'x-conversation-id': response.headers()['x-conversation-id'] || '' }, body });
});

const text = async (selector) => (await page.locator(selector).first().textContent()) || '';
const eventLog = () => page.evaluate(() => window.__journeyLog || []);

async function go(hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

async function ask(question) {
  await page.fill('#question', question);
  await page.press('#question', 'Enter');
}

/** Waits for the newest answer to finish; returns its locator. */
async function lastAnswer(finish = '.stage.final') {
  const answer = page.locator('.answer.live, .answer.answered, .answer.failed').last();
  await answer.locator(finish).first().waitFor();
  return answer;
}

async function watchEvents() {
  await page.evaluate(() => {
    window.__journeyLog = [];
    new MutationObserver((records) => {
      for (const record of records) {
        for (const node of record.addedNodes) {
          if (node.nodeType !== 1) continue;
          if (node.matches('li.stage')) window.__journeyLog.push(`stage:${node.dataset.stage}:${node.dataset.attempt || ''}`);
          if (node.matches('.result')) window.__journeyLog.push('result');
        }
        const target = record.target.nodeType === 1 ? record.target : record.target.parentElement;
        if (target && target.classList.contains('stream-status') && target.textContent) {
          window.__journeyLog.push(`status:${target.textContent}`);
        }
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
}

try {
  step('the console loads with its security headers');
  const response = await page.goto(`${base}/`);
  assert(response.status() === 200, `GET / answered ${response.status()}`);
  assert(response.headers()['content-security-policy'] === CSP, `CSP: ${response.headers()['content-security-policy']}`);
  assert(response.headers()['x-content-type-options'] === 'nosniff', 'nosniff');
  assert(response.headers()['referrer-policy'] === 'no-referrer', 'referrer policy');
  await page.locator('#login-form').waitFor();
  await watchEvents();

  step('register: a short password is explained, then the account is created');
  await page.click('#auth-switch');
  await page.fill('#auth-email', EMAIL);
  await page.fill('#auth-password', 'short');
  await page.evaluate(() => document.getElementById('auth-password').removeAttribute('minlength'));
  await page.click('#auth-submit');
  await page.locator('#auth-message', { hasText: 'at least 8 characters' }).waitFor();
  await page.fill('#auth-password', PASSWORD);
  await page.fill('#auth-name', 'Console Tester');
  await page.press('#auth-name', 'Enter');
  await page.locator('#user-name', { hasText: 'Console Tester' }).waitFor();
  // A new account's language is Chinese (the server's default).
  assert((await text('#logout')) === '退出登录', `Chinese by default: ${await text('#logout')}`);
  assert(await page.evaluate(() => ['localStorage', 'sessionStorage'].every((s) => window[s].length === 0)),
    'nothing is kept in web storage');

  step('settings: English');
  await go('#/settings');
  await page.selectOption('#cfg-language', 'en');
  await page.click('#cfg-save');
  await page.locator('.nav-link[data-route="chat"]', { hasText: 'Ask' }).waitFor();

  step('log out, a wrong password is explained, log in');
  await page.click('#logout');
  await page.locator('#auth-message', { hasText: 'You have logged out.' }).waitFor();
  await page.fill('#auth-email', EMAIL);
  await page.fill('#auth-password', 'not the password');
  await page.press('#auth-password', 'Enter');
  await page.locator('#auth-message', { hasText: 'Wrong e-mail or password.' }).waitFor();
  await page.fill('#auth-password', PASSWORD);
  await page.press('#auth-password', 'Enter');
  await page.locator('#logout', { hasText: 'Log out' }).waitFor();

  step('models: add one pointing at the fake LLM, test it, edit it');
  await go('#/models');
  await page.click('#models-add');
  await page.fill('#model-name', 'Fake GPT');
  await page.selectOption('#model-provider', 'openai');
  await page.fill('#model-model-id', 'gpt-4o');
  await page.fill('#model-base-url', llmUrl);
  await page.fill('#model-api-key', 'sk-console-test');
  await page.click('#models-form button[type=submit]');
  const model = page.locator('#models-list .card[data-name="Fake GPT"]');
  await model.waitFor();
  await model.locator('button.test').click();
  await model.locator('.test-result[data-ok="true"]').waitFor();
  await model.locator('button.edit').click();
  await page.fill('#model-name', 'Fake GPT 4o');
  await page.click('#models-form button[type=submit]');
  await page.locator('#models-list .card[data-name="Fake GPT 4o"]').waitFor();
  assert(!(await page.content()).includes('sk-console-test'), 'the API key is not shown');

  step('connections: add the SQLite file, test it, make it the default, browse its schema');
  await go('#/connections');
  await page.click('#connections-add');
  await page.fill('#conn-name', 'Console target');
  await page.selectOption('#conn-driver', 'sqlite');
  await page.fill('#conn-database', sqlitePath);
  await page.click('#connections-form button[type=submit]');
  const connection = page.locator('#connections-list .card[data-name="Console target"]');
  await connection.waitFor();
  await connection.locator('button.test').click();
  await connection.locator('.test-result[data-ok="true"]').waitFor();
  assert((await connection.locator('.test-result').textContent()).includes('SQLite'), 'the test names the server');
  await connection.locator('button.make-default').click();
  await page.locator('#connections-list .card[data-name="Console target"] .badge.default').waitFor();
  await page.locator('#connections-list .card[data-name="Console target"] button.schema-btn').click();
  const items = page.locator('#schema-panel details[data-table="items"]');
  await items.waitFor();
  await items.locator('summary').click();
  await items.locator('td', { hasText: 'qty' }).waitFor();

  step('ask: the stages arrive in order, one correction included');
  await go('#/chat');
  await page.locator('#question').waitFor();
  await page.evaluate(() => { window.__journeyLog = []; });
  await ask('How many items per name?');
  let answer = await lastAnswer();
  const stages = (await eventLog()).filter((e) => e.startsWith('stage:') || e === 'result');
  assert(JSON.stringify(stages) === JSON.stringify(['stage:analyzing:1', 'stage:generating_sql:1', 'stage:executing:1',
    'stage:generating_sql:2', 'stage:executing:2', 'result', 'stage:done:']), `stages: ${JSON.stringify(stages)}`);
  assert((await answer.locator('li.stage[data-stage="generating_sql"][data-attempt="2"]').textContent()).includes('attempt 2'),
    'the correction says which attempt it is');

  step('the answer: cells and explanation are text, the SQL is highlighted, the chart is SVG');
  await answer.locator('table.rows td', { hasText: XSS_CELL }).waitFor();
  assert(await answer.locator('table.rows img').count() === 0, 'no <img> element was made from a cell');
  assert(await page.locator('img').count() === 0, 'no <img> anywhere');
  const explanation = await answer.locator('.explanation p').textContent();
  assert(explanation.includes(XSS_EXPLANATION), `the explanation shows its tag as text: ${explanation}`);
  assert(await page.locator('.explanation script, .chat-log script').count() === 0, 'no <script> element was made');
  assert(await answer.locator('svg.chart path.slice').count() === 3, 'a pie chart of three slices');
  assert((await answer.locator('.sql-pre .tok-keyword').first().textContent()) === 'SELECT', 'SQL keywords are highlighted');
  await answer.locator('button.copy-sql').click();
  await answer.locator('.copy-status', { hasText: 'Copied.' }).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert(copied.startsWith('SELECT name, qty FROM items'), `copied: ${copied}`);
  const firstColumn = async () => answer.locator('table.rows tbody tr td:first-child').allTextContents();
  const qtyHeader = answer.locator('table.rows th button.sort', { hasText: 'qty' });
  await qtyHeader.click();
  assert(JSON.stringify(await firstColumn()) === JSON.stringify(['gadget', XSS_CELL, 'widget']), `ascending: ${await firstColumn()}`);
  await qtyHeader.press('Enter');
  assert(JSON.stringify(await firstColumn()) === JSON.stringify(['widget', XSS_CELL, 'gadget']), `descending: ${await firstColumn()}`);
  await page.screenshot({ path: join(artifacts, 'console-1280.png'), fullPage: false });

  step('continue the conversation');
  const conversationHash = await page.evaluate(() => location.hash);
  assert(/^#\/chat\/[0-9a-f-]{36}$/.test(conversationHash), `the URL names the conversation: ${conversationHash}`);
  await ask('Only the widget please');
  answer = await lastAnswer();
  await answer.locator('table.rows td', { hasText: 'widget' }).waitFor();
  assert(await page.locator('#chat-log .bubble.user').count() === 2, 'two questions in the log');
  await go('#/models');
  await go(conversationHash);
  await page.locator('#chat-log .answer.stored').nth(1).waitFor();
  assert(await page.locator('#chat-log .bubble.user').count() === 2, 'the stored conversation has both questions');
  assert(await page.locator('#chat-log .answer.stored svg.chart').count() >= 1, 'the stored answer draws its chart');

  step('stop a slow question');
  await page.click('#new-chat');
  await page.locator('#chat-title', { hasText: 'New conversation' }).waitFor();
  await ask('A slow question');
  await page.locator('.answer.live li.stage[data-stage="generating_sql"]').waitFor();
  await page.locator('#stop:not([disabled])').waitFor();
  const stopAt = Date.now();
  await page.click('#stop');
  await page.locator('.answer .notice.stopped').waitFor();
  assert(Date.now() - stopAt < 10_000, 'the stop ended the question at once');
  await page.locator('#stop').waitFor({ state: 'hidden' });

  for (const mode of ['drop', 'reconnect']) {
    step(`a stream cut (${mode}) is resumed with Last-Event-ID`);
    await page.click('#new-chat');
    await page.locator('#chat-title', { hasText: 'New conversation' }).waitFor();
    await page.evaluate(() => { window.__journeyLog = []; });
    cutNextStream = mode;
    await ask(`Resume after ${mode}`);
    answer = await lastAnswer();
    await answer.locator('table.rows td', { hasText: 'gadget' }).waitFor();
    const log = await eventLog();
    assert(log.some((e) => e.startsWith('status:Connection lost: reconnecting')), `reconnecting was shown: ${log}`);
    assert(log.some((e) => e === 'status:Reconnected.'), `reconnected was shown: ${log}`);
    const seen = log.filter((e) => e.startsWith('stage:') || e === 'result');
    assert(JSON.stringify(seen) === JSON.stringify(['stage:analyzing:1', 'stage:generating_sql:1', 'stage:executing:1',
      'result', 'stage:done:']), `each event once: ${seen}`);
  }

  step('conversations: search, favorite, delete');
  await page.fill('#conv-search', 'items per name');
  await page.locator('#conv-list .conv-item').first().waitFor();
  await page.waitForFunction(() => document.querySelectorAll('#conv-list .conv-item').length === 1);
  const found = page.locator('#conv-list .conv-item').first();
  assert((await found.locator('.conv-title').textContent()) === 'How many items per name?', 'search finds the conversation');
  await found.locator('button.fav').click();
  await page.locator('#conv-list .conv-item[data-favorite="true"] button.fav[aria-pressed="true"]').waitFor();
  await page.fill('#conv-search', '');
  await page.check('#conv-favorites');
  await page.waitForFunction(() => document.querySelectorAll('#conv-list .conv-item').length === 1);
  await page.uncheck('#conv-favorites');
  await page.waitForFunction(() => document.querySelectorAll('#conv-list .conv-item').length === 3);
  const doomed = page.locator('#conv-list .conv-item', { hasText: 'Resume after drop' });
  await doomed.locator('button.delete').click();
  await doomed.locator('button.confirm').click();
  await page.waitForFunction(() => document.querySelectorAll('#conv-list .conv-item').length === 2);
  assert(await page.locator('#conv-list .conv-item', { hasText: 'Resume after drop' }).count() === 0, 'deleted');

  step('developer view: tokens, attempts and time per stage');
  await go('#/settings');
  await page.selectOption('#cfg-view', 'developer');
  await page.click('#cfg-save');
  await page.locator('#toast', { hasText: 'Saved.' }).waitFor();
  await go('#/chat');
  await page.click('#new-chat');
  await ask('Total quantity');
  answer = await lastAnswer();
  const panel = answer.locator('.dev-panel');
  await panel.waitFor();
  const promptTokens = await panel.locator('[data-dev="prompt_tokens"] dd').textContent();
  assert(Number(promptTokens) > 0, `prompt tokens: ${promptTokens}`);
  assert(Number(await panel.locator('[data-dev="completion_tokens"] dd').textContent()) > 0, 'completion tokens');
  assert((await panel.locator('[data-dev="attempts"] dd').textContent()) === '1', 'attempts');
  assert(/ms/.test(await panel.locator('[data-dev="stage_ms"] dd').textContent()), 'time per stage');
  assert(await answer.locator('li.stage .elapsed').count() >= 3, 'each stage shows its time');
  assert((await panel.locator('.dev-sql').textContent()).includes('SUM(qty)'), 'the executed SQL');

  step('prompts: edit, then reset');
  await go('#/settings');
  const explanationPrompt = page.locator('#prompt-explanation');
  await explanationPrompt.waitFor();
  const original = await explanationPrompt.inputValue();
  assert(original.length > 0, 'the default prompt is shown');
  await explanationPrompt.fill(`${original}\nKeep it short.`);
  await page.click('#prompts-save');
  await page.locator('[data-prompt="explanation"][data-customized="true"]').waitFor();
  await page.click('#prompts-reset');
  await page.locator('[data-prompt="explanation"][data-customized="false"]').waitFor();
  assert((await page.locator('#prompt-explanation').inputValue()) === original, 'the default is back');

  step('API keys: create (shown once), revoke');
  await page.fill('#key-name', 'ci key');
  await page.click('#key-create');
  const secret = await page.locator('#new-key').textContent();
  assert(secret.startsWith('qgpt_') && secret.length > 20, `a new key: ${secret}`);
  const keyCard = page.locator('#keys-list .card[data-name="ci key"]');
  await keyCard.waitFor();
  await page.click('#key-dismiss');
  assert(await page.locator('#new-key').count() === 0, 'the key is dismissed');
  assert(!(await page.content()).includes(secret), 'the key is not shown again');
  assert((await keyCard.locator('.key-hint').textContent()).endsWith(secret.slice(-4)), 'the list shows its last four');
  await keyCard.locator('button.revoke').click();
  await keyCard.locator('button.confirm').click();
  await page.waitForFunction(() => !document.querySelector('#keys-list .card[data-name="ci key"]'));

  step('the refresh flow: renewed in the background, after a 401, and one request for concurrent renewals');
  // Access tokens live 6 s in this test: the console renews them in the background (at 80 % of their life).
  for (let i = 0; i < 100 && refreshRequests === 0; i += 1) await page.waitForTimeout(100);
  assert(refreshRequests >= 1, `the access token was renewed in the background (${refreshRequests} times)`);
  const renewedMe = await page.evaluate(async () => (await import('/console/js/api.js')).api.get('/auth/me'));
  assert(renewedMe.email === EMAIL.toLowerCase(), 'a renewed token works');
  // A request refused with 401 token_expired is renewed once and sent again.
  let expiredOnce = true;
  await page.route('**/api/v1/auth/me', (route) => {
    if (!expiredOnce) return route.continue();
    expiredOnce = false;
    return route.fulfill({ status: 401, contentType: 'application/json', body: JSON.stringify({ success: false,
      error: { code: 'UNAUTHORIZED', message: 'the token has expired', details: { reason: 'token_expired' } } }) });
  });
  const beforeExpiry = refreshRequests;
  const retried = await page.evaluate(async () => (await import('/console/js/api.js')).api.get('/auth/me'));
  assert(!expiredOnce && retried.display_name === 'Console Tester', 'the refused request was retried');
  assert(refreshRequests - beforeExpiry === 1, `one renewal for the 401 (${refreshRequests - beforeExpiry})`);
  const before = refreshRequests;
  const shared = await page.evaluate(async () => {
    const client = await import('/console/js/api.js');
    const first = client.refreshSession();
    const same = first === client.refreshSession() && first === client.refreshSession();
    await Promise.all([first, client.api.get('/auth/me'), client.api.get('/config')]);
    return same && (await client.api.get('/auth/me')).display_name;
  });
  assert(shared === 'Console Tester', `concurrent renewals share one request (${shared})`);
  assert(refreshRequests - before <= 2, `renewals: ${refreshRequests - before}`);

  step('theme dark, language Chinese');
  await page.selectOption('#cfg-theme', 'dark');
  await page.selectOption('#cfg-language', 'zh');
  await page.click('#cfg-save');
  await page.locator('.nav-link[data-route="chat"]', { hasText: '提问' }).waitFor();
  assert(await page.evaluate(() => document.documentElement.dataset.theme) === 'dark', 'dark theme');
  assert((await text('#settings-title')) === '设置', 'Chinese headings');
  await go(conversationHash);
  await page.locator('#chat-log .answer.stored').first().waitFor();
  await page.screenshot({ path: join(artifacts, 'console-1280-dark-zh.png') });

  step('390 px wide: the sidebar collapses behind the menu button');
  await page.setViewportSize({ width: 390, height: 844 });
  assert(await page.locator('#sidebar').isHidden(), 'the sidebar is hidden');
  await page.screenshot({ path: join(artifacts, 'console-390.png') });
  await page.click('#menu-toggle');
  assert(await page.locator('#sidebar').isVisible(), 'the menu opens the sidebar');
  assert((await page.locator('#menu-toggle').getAttribute('aria-expanded')) === 'true', 'aria-expanded');
  await page.screenshot({ path: join(artifacts, 'console-390-menu.png') });
  await page.click('.nav-link[data-route="settings"]');
  assert(await page.locator('#sidebar').isHidden(), 'choosing a page closes the menu');
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  assert(scrollWidth <= 390, `nothing overflows at 390 px (${scrollWidth})`);
  await page.setViewportSize({ width: 1280, height: 900 });

  step('keyboard: focus moves to real controls');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.tagName);
  assert(['A', 'BUTTON', 'INPUT', 'SELECT', 'TEXTAREA'].includes(focused), `focus: ${focused}`);

  step('log out (in Chinese), log in, and an ended session explains itself');
  await page.click('#logout');
  await page.locator('#auth-message', { hasText: '您已退出登录' }).waitFor();
  await page.fill('#auth-email', EMAIL);
  await page.fill('#auth-password', PASSWORD);
  await page.press('#auth-password', 'Enter');
  await page.locator('#logout').waitFor();
  refreshRefusalsExpected = true;
  await page.route('**/api/v1/auth/refresh', (route) => route.fulfill({ status: 401, contentType: 'application/json',
    body: JSON.stringify({ success: false, error: { code: 'UNAUTHORIZED', message: 'reused', details: { reason: 'refresh_token_reused' } } }) }));
  await page.evaluate(async () => (await import('/console/js/api.js')).refreshSession().catch(() => {}));
  await page.locator('#auth-message', { hasText: '续期令牌被使用了两次' }).waitFor();

  assert(problems.length === 0, `problems in the page:\n${problems.join('\n')}`);
  step(`done: ${refreshRequests} token renewals`);
  await browser.close();
} catch (error) {
  console.error(error && error.stack ? error.stack : error);
  if (problems.length) console.error(`problems in the page:\n${problems.join('\n')}`);
  try {
    await page.screenshot({ path: join(artifacts, 'failure.png'), fullPage: true });
    console.error(`screenshot of the failure: ${join(artifacts, 'failure.png')}`);
  } catch {
    // the browser is gone
  }
  await browser.close().catch(() => {});
  process.exit(1);
}
