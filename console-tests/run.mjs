// End-to-end tests of the web console in Debian's Chromium, driven by playwright-core.
// Run by crates/cli/tests/it/console.rs, which starts the server, places the simulated phone
// call when this script prints `NEED call`, and reads `OK …` / `FAIL …` lines.
//
// Env: CF_BASE (server URL), CF_PASSWORD (dev sign-in password), CF_TENANT, CF_ARTIFACTS
// (screenshots), CF_FAKE_MIC (a WAV for the fake microphone), CF_CHROMIUM (default
// /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { artifactsDir, steps } from './steps.mjs';
import { createInterface } from 'node:readline';

const base = process.env.CF_BASE;
const artifacts = artifactsDir(process.env.CF_ARTIFACTS || 'console-artifacts');
const lines = createInterface({ input: process.stdin });
const said = [];
let waiting = null;
lines.on('line', l => { said.push(l); if (waiting) { const w = waiting; waiting = null; w(); } });
async function hear(prefix, ms = 60000) {
  const t0 = Date.now();
  for (;;) {
    const i = said.findIndex(l => l.startsWith(prefix));
    if (i >= 0) return said.splice(i, 1)[0].slice(prefix.length).trim();
    if (Date.now() - t0 > ms) throw new Error(`no "${prefix}" from the test harness within ${ms} ms`);
    await new Promise(r => { waiting = r; setTimeout(r, 500); });
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CF_CHROMIUM || '/usr/bin/chromium',
  args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${process.env.CF_FAKE_MIC}`,
    '--autoplay-policy=no-user-gesture-required', '--no-sandbox'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
await context.grantPermissions(['microphone'], { origin: base });
const page = await context.newPage();
const foreign = [];
page.on('request', r => { const u = new URL(r.url()); if (!['data:', 'blob:'].includes(u.protocol) && u.origin !== base) foreign.push(r.url()); });
const consoleErrors = [];
page.on('console', m => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', e => consoleErrors.push(String(e)));

const { step, shot, finish } = steps(page, artifacts);
const expectText = async (locator, re, timeout = 30000) => {
  const t0 = Date.now();
  for (;;) {
    const t = await locator.innerText().catch(() => '');
    if (re.test(t)) return t;
    if (Date.now() - t0 > timeout) throw new Error(`expected ${re} in: ${t.slice(0, 500)}`);
    await page.waitForTimeout(250);
  }
};

await step('sign in through the issuer (authorization code + PKCE)', async () => {
  await page.goto(`${base}/console/`);
  await page.waitForURL(/\/dev\/oidc\/auth\?/);
  await page.getByLabel('User name').fill('ana');
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expectText(page.getByRole('alert'), /Wrong user name or password/);
  await shot('sign-in');
  await page.getByLabel('Password').fill(process.env.CF_PASSWORD);
  await page.getByLabel('Tenant').fill(process.env.CF_TENANT);
  await page.getByLabel('Role').selectOption('tenant-admin');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/console\/#\/calls/);
  await expectText(page.locator('#who'), /ana/);
  await page.getByRole('heading', { name: 'Calls' }).waitFor();
});

let callId = null;
await step('a phone call appears live and its transcript grows', async () => {
  await expectText(page.locator('#live-state'), /live/);
  const before = await page.locator('#calls-body tr').count();
  console.log('NEED call');
  const row = page.locator('#calls-body tr').filter({ has: page.locator('.badge.live') }).first();
  await row.waitFor({ timeout: 30000 });
  if (await page.locator('#calls-body tr').count() !== before + 1) throw new Error('the new call did not add one row');
  callId = await row.getAttribute('data-call');
  const started = await row.locator('time').getAttribute('datetime');
  if (Math.abs(Date.parse(started) - Date.now()) > 600000) throw new Error(`the call shows as started at ${started}`);
  await shot('calls-live');
  await row.getByRole('link').click();
  await page.getByRole('heading', { name: new RegExp(`Call ${callId}`) }).waitFor();
  await expectText(page.locator('#call-status'), /live/);
  const items = page.locator('#transcript li');
  await expectText(page.locator('#transcript'), /Agent:/);
  const first = await items.count();
  await expectText(page.locator('#transcript'), /Caller:/, 60000);
  if (await items.count() <= first) throw new Error('the transcript did not grow while the call ran');
  await shot('call-live');
  await expectText(page.locator('#call-status'), /ended/, 90000);
});

await step('call detail: timeline, waterfall, recording plays, analysis', async () => {
  await hear('CALL_DONE');
  await page.reload();
  await page.getByRole('heading', { name: new RegExp(`Call ${callId}`) }).waitFor();
  await expectText(page.locator('#call-status'), /ended/);
  if (await page.locator('#waterfall .row').count() < 1) throw new Error('no latency waterfall row');
  await page.locator('#timeline summary').click();
  await expectText(page.locator('#timeline'), /call_started[\s\S]*call_ended/);
  const player = page.locator('#player');
  await player.waitFor({ timeout: 15000 });
  const played = await player.evaluate(async a => {
    if (a.readyState < 1) await new Promise((ok, bad) => { a.onloadedmetadata = ok; a.onerror = () => bad(new Error(`audio error ${a.error && a.error.code}`)); });
    await a.play();
    await new Promise(r => setTimeout(r, 1200));
    return { duration: a.duration, at: a.currentTime };
  });
  if (!(played.duration > 1 && played.at > 0.5)) throw new Error(`the recording did not play: ${JSON.stringify(played)}`);
  await expectText(page.locator('#analysis'), /Summary: \S/, 30000);
  await shot('call-detail');
});

await step('filters and search narrow the call list', async () => {
  await page.goto(`${base}/console/#/calls`);
  await page.locator(`#calls-body tr[data-call="${callId}"]`).waitFor();
  await page.getByLabel('Status').selectOption('live');
  if (await page.locator(`#calls-body tr[data-call="${callId}"]`).count() !== 0) throw new Error('an ended call shows under Live');
  await page.getByLabel('Status').selectOption('ended');
  await page.getByLabel('Search').fill(callId.slice(2, 10));
  await page.locator(`#calls-body tr[data-call="${callId}"]`).waitFor();
  await page.getByLabel('Search').fill('no-such-call-anywhere');
  if (await page.locator('#calls-body tr').count() !== 0) throw new Error('search did not filter');
});

const AGENT = 'console-bakery';
const BOOK = `name = "Console Bakery"
greeting = "Hello, this is the bakery. How can I help?"
fallback = ["Sorry, I can tell you our opening hours."]

[[intent]]
name = "hours"
examples = ["what are your opening hours", "when are you open", "what time do you open"]
keywords = ["hours", "open", "opening"]
reply = "We bake from seven in the morning until two in the afternoon."
`;

await step('create an agent, see lint errors inline, publish', async () => {
  await page.getByRole('link', { name: 'Agents' }).click();
  await page.getByRole('heading', { name: 'Agents' }).waitFor();
  await page.getByLabel('Agent id').fill(AGENT);
  await page.getByLabel('Name').fill('Console Bakery');
  await page.getByRole('button', { name: 'Create agent' }).click();
  await page.getByRole('heading', { name: 'Console Bakery' }).waitFor();
  const body = page.getByLabel('Prompt or rule-book');
  await body.fill('name = "Broken"\ngreeting = [unclosed\n');
  await expectText(page.locator('#lint-summary'), /[1-9]\d* error/);
  if (!(await page.locator('#publish').isDisabled())) throw new Error('publish is enabled with lint errors');
  if (await body.getAttribute('aria-invalid') !== 'true') throw new Error('the editor is not marked invalid');
  await expectText(page.locator('#lint'), /line \d+/);
  await shot('agent-lint');
  await body.fill(BOOK);
  await expectText(page.locator('#lint-summary'), /0 error|No problems/);
  await page.getByLabel('Language').fill('en-US');
  await page.locator('#publish').click();
  await expectText(page.locator('#publish-result'), /Published version 1/);
  await page.locator('#versions').waitFor();
  await expectText(page.locator('#versions'), /v1/);
  const published = await page.locator('#versions time').first().getAttribute('datetime');
  if (Math.abs(Date.parse(published) - Date.now()) > 600000) throw new Error(`version 1 shows as published at ${published}`);
  await shot('agent-published');
});

await step('talk to the agent from the browser (fake microphone)', async () => {
  await page.goto(`${base}/console/#/talk/${AGENT}`);
  await page.getByRole('button', { name: 'Start talking' }).click();
  await expectText(page.locator('#talk-state'), /Connected/);
  await expectText(page.locator('#talk-transcript'), /Agent:\s*Hello, this is the/, 60000);
  await expectText(page.locator('#talk-transcript'), /You:/, 60000);
  await expectText(page.locator('#talk-transcript'), /seven in the morning/, 60000);
  await shot('talk');
  await page.getByRole('button', { name: 'Hang up' }).click();
  await expectText(page.locator('#talk-state'), /Hung up|ended/);
});

await step('knowledge: create a base, upload a document, watch it get indexed', async () => {
  await page.getByRole('link', { name: 'Knowledge', exact: true }).click();
  await page.getByRole('heading', { name: 'Knowledge', level: 1 }).waitFor();
  await page.getByLabel('Knowledge base id').fill('bakery-faq');
  await page.getByLabel('Name', { exact: true }).fill('Bakery FAQ');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('heading', { name: /Bakery FAQ/ }).waitFor();
  await page.getByLabel('Document').setInputFiles({ name: 'sourdough.md', mimeType: 'text/markdown',
    buffer: Buffer.from('# Sourdough\n\nOur sourdough loaf is baked every morning with a starter that is twelve years old.\n\n## Gluten free\n\nOn Fridays we bake a gluten free rye bread.\n') });
  await page.getByRole('button', { name: 'Upload' }).click();
  await expectText(page.locator('tr[data-doc="sourdough"]'), /ready · [1-9]\d* chunks/, 60000);
  await page.getByLabel('Search this knowledge base').fill('is there gluten free bread');
  await page.getByRole('button', { name: 'Search' }).click();
  await expectText(page.locator('section ol'), /gluten free rye/);
  await shot('knowledge');
});

await step('campaigns: progress, start, pause and resume', async () => {
  // a campaign whose calling window is never today: it runs without dialling anyone
  const tomorrow = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][(new Date().getDay() + 2) % 7];
  const made = await page.evaluate(async day => {
    const token = JSON.parse(sessionStorage.getItem('callfunnel.session')).token;
    const r = await fetch('/v1/campaigns', { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ id: 'reminders', name: 'Pick-up reminders', agent_id: 'console-bakery', contacts: [{ number: '+15550100201' }, { number: '+15550100202' }],
        settings: { window: { start: '09:00', end: '17:00', days: [day], timezone: 'UTC' }, concurrency: 1, max_attempts: 1, retry_backoff_s: 60 } }) });
    return r.status;
  }, tomorrow);
  if (made !== 201) throw new Error(`campaign not created: HTTP ${made}`);
  await page.getByRole('link', { name: 'Campaigns', exact: true }).click();
  const row = page.locator('tr[data-campaign="reminders"]');
  await expectText(row, /draft[\s\S]*0 done, 0 failed, 0 dialling, 2 waiting/);
  await row.getByRole('button', { name: 'Start' }).click();
  await expectText(row, /running/);
  await row.getByRole('button', { name: 'Pause' }).click();
  await expectText(row, /paused/);
  await shot('campaigns');
  await row.getByRole('button', { name: 'Resume' }).click();
  await expectText(row, /running/);
});

await step('usage: this month and invoices', async () => {
  await page.getByRole('link', { name: 'Usage', exact: true }).click();
  await page.getByRole('heading', { name: 'Usage', level: 1 }).waitFor();
  await expectText(page.locator('#usage'), /call minutes/);
  const today = new Date().getUTCDate();
  if (await page.locator('#minutes-chart rect').count() !== today) throw new Error(`the chart should have one bar per day so far (${today})`);
  const title = await page.locator('#minutes-chart title').textContent();
  if (!new RegExp(`(: |, )${today} \\d+\\.\\d`).test(title) || /: none$/.test(title)) throw new Error(`today's calls are not in the chart: ${title}`);
  // the harness put two minutes of calls into last month, priced at 0.24
  const d = new Date(), last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1));
  const lastMonth = `${last.getUTCFullYear()}-${String(last.getUTCMonth() + 1).padStart(2, '0')}`;
  if (await page.locator('#invoice-chart rect').count() !== 6) throw new Error('the invoice chart should show six months');
  const inv = await page.locator('#invoice-chart title').textContent();
  if (!inv.includes(`${lastMonth} 0.2`)) throw new Error(`last month's invoice is not in the chart: ${inv}`);
  await expectText(page.locator('#invoice'), /Invoice \S+ for \d{4}-\d{2}[\s\S]*Total/);
  await shot('usage');
});

await step('keyboard: skip link and navigation', async () => {
  await page.goto(`${base}/console/#/calls`);
  await page.reload();
  await page.getByRole('heading', { name: 'Calls' }).waitFor();
  await page.keyboard.press('Tab');
  const skip = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
  if (!/Skip to content/.test(skip)) throw new Error(`first Tab stop: ${skip}`);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')].filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.outerHTML));
  if (unlabelled.length) throw new Error(`controls without labels: ${unlabelled.join(' ')}`);
});

await step('phone width: no horizontal page scroll', async () => {
  await page.setViewportSize({ width: 375, height: 800 });
  for (const hash of ['#/calls', `#/calls/${callId}`, `#/agents/${AGENT}`, '#/usage']) {
    await page.goto(`${base}/console/${hash}`);
    await page.locator('#main h1').waitFor();
    await page.waitForTimeout(300);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    if (wide > 1) throw new Error(`${hash} scrolls sideways by ${wide}px at 375px`);
    await shot(`phone-${hash.split('/')[1]}`);
  }
});

await step('no requests to anyone but this server, no script errors', async () => {
  if (foreign.length) throw new Error(`requests elsewhere: ${foreign.slice(0, 5).join(', ')}`);
  const real = consoleErrors.filter(e => !/401|Failed to load resource/.test(e));
  if (real.length) throw new Error(`console errors: ${real.slice(0, 5).join(' | ')}`);
});

await finish(browser);
