// The console's sign-in against an external OpenID Connect issuer shaped like Keycloak
// (tests/services/oidc/provider.mjs: realm `voice`, public client `callfunnel-console`), in
// Debian's Chromium driven by playwright-core. Run by crates/cli/tests/it/console.rs, which
// starts the server in `oidc` auth mode; prints `OK …` / `FAIL …` lines, then PASSED or FAILED.
//
// Env: CF_BASE (server URL), CF_ISSUER (the realm's issuer URL), CF_ARTIFACTS (screenshots),
// CF_CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { artifactsDir, steps } from './steps.mjs';

const base = process.env.CF_BASE;
const issuer = process.env.CF_ISSUER;
const artifacts = artifactsDir(process.env.CF_ARTIFACTS || 'console-artifacts/keycloak');

const browser = await chromium.launch({ executablePath: process.env.CF_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const elsewhere = [];
const issuerOrigin = new URL(issuer).origin;
page.on('request', r => { const o = new URL(r.url()).origin; if (o !== base && o !== issuerOrigin) elsewhere.push(r.url()); });
const failures = [];
page.on('response', r => { if (r.status() >= 400) failures.push(`${r.request().method()} ${r.status()} ${r.url()}`); });
const consoleErrors = [];
page.on('console', m => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', e => consoleErrors.push(String(e)));
// API responses with the claims of the bearer token sent (never the token: reports stay secret-free)
const apiCalls = [];
const claimsOf = auth => { try { return JSON.parse(Buffer.from(auth.replace(/^Bearer /, '').split('.')[1], 'base64url').toString()); } catch { return null; } };
page.on('response', async r => {
  if (new URL(r.url()).pathname.startsWith('/v1/')) apiCalls.push({ path: new URL(r.url()).pathname, status: r.status(), claims: claimsOf((await r.request().allHeaders()).authorization || '') });
});
const brief = calls => JSON.stringify(calls.map(c => ({ path: c.path, status: c.status })));

const { step, shot, finish } = steps(page, artifacts);

await step('the console sends the browser to the realm\'s login page', async () => {
  await page.goto(`${base}/console/`);
  await page.waitForURL(u => u.href.startsWith(`${issuer}/login-actions/`));
  const url = new URL(page.url());
  if (url.origin !== issuerOrigin) throw new Error(`login page at ${url.origin}`);
  await page.getByRole('heading', { name: 'Sign in to your account' }).waitFor();
  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Password').fill('not her password');
  await page.getByRole('button', { name: 'Sign In' }).click();
  await page.getByRole('alert').filter({ hasText: 'Invalid username or password.' }).waitFor();
  await shot('keycloak-login');
});

await step('signing in returns to the console with a realm access token', async () => {
  await page.getByLabel('Password').fill('alice-password');
  await page.getByRole('button', { name: 'Sign In' }).click();
  await page.waitForURL(u => u.href.startsWith(`${base}/console/#/calls`));
  if (new URL(page.url()).search) throw new Error(`the code stays in the address bar: ${page.url()}`);
  await page.getByRole('heading', { name: 'Calls' }).waitFor();
  const who = await page.locator('#who').innerText();
  if (!/alice/.test(who) || !/acme/.test(who)) throw new Error(`signed in as: ${who}`);
  await page.waitForFunction(() => document.querySelector('#calls-body') !== null);
  await page.waitForTimeout(500);
  const calls = apiCalls.filter(c => c.path === '/v1/calls');
  if (!calls.length) throw new Error(`no /v1/calls request; API requests: ${brief(apiCalls)}`);
  if (calls.some(c => c.status !== 200)) throw new Error(`the API refused the token: ${brief(calls)}`);
  const claims = calls[0].claims || {};
  if (claims.iss !== issuer || claims.azp !== 'callfunnel-console' || claims.aud !== 'voice-api' || claims.tenant_id !== 'acme')
    throw new Error(`the API got a token with ${JSON.stringify(claims)}`);
  if (await page.locator('p.error[role=alert]').count()) throw new Error(await page.locator('p.error[role=alert]').first().innerText());
  await shot('keycloak-calls');
});

await step('an editor creates an agent with the realm token', async () => {
  await page.goto(`${base}/console/#/agents`);
  await page.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
  await page.getByLabel('Agent id').fill('kc-made');
  await page.getByLabel('Name').fill('Made by Alice');
  await page.getByRole('button', { name: 'Create agent' }).click();
  await page.waitForURL(u => u.hash === '#/agents/kc-made');
  const made = apiCalls.filter(c => c.path === '/v1/agents' && c.status === 201);
  if (!made.length) throw new Error(`creating the agent: ${brief(apiCalls.filter(c => c.path === '/v1/agents'))}`);
  await shot('keycloak-agent');
});

await step('a viewer of the same realm sees the agent but is offered no changes', async () => {
  const viewer = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p = await viewer.newPage();
  p.on('pageerror', e => consoleErrors.push(String(e)));
  await p.goto(`${base}/console/#/agents`);
  await p.waitForURL(u => u.href.startsWith(`${issuer}/login-actions/`));
  await p.getByLabel('Username').fill('victor');
  await p.getByLabel('Password').fill('victor-password');
  await p.getByRole('button', { name: 'Sign In' }).click();
  await p.waitForURL(u => u.href.startsWith(`${base}/console/#/agents`));
  await p.locator('#agents').getByText('kc-made').waitFor();
  if (await p.locator('#create-agent').count()) throw new Error('a viewer is offered the new-agent form');
  if (!/victor/.test(await p.locator('#who').innerText())) throw new Error('not signed in as victor');
  await p.screenshot({ path: `${artifacts}/keycloak-viewer.png`, fullPage: true });
  await viewer.close();
});

await step('only this server and the issuer are contacted, no script or CSP errors', async () => {
  if (elsewhere.length) throw new Error(`requests elsewhere: ${elsewhere.slice(0, 5).join(', ')}`);
  const real = consoleErrors.filter(e => !/^Failed to load resource/.test(e));
  if (real.length) throw new Error(`console errors: ${real.slice(0, 5).join(' | ')}`);
  // expected: the wrong password (once), and what a new agent's page probes that it lacks yet
  const refused = failures.filter(f => !/^POST 401 .*\/login-actions\//.test(f) && !/ 404 .*\/v1\/agents\/kc-made\//.test(f));
  if (failures.length - refused.length > 3) throw new Error(`more failed requests than expected: ${failures.join(' | ')}`);
  if (refused.length) throw new Error(`failed requests: ${refused.join(' | ')}`);
});

await finish(browser);
