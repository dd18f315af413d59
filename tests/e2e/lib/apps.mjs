// What the apps' browser tests (tests/e2e/app_*.test.mjs) share: Plaza on
// the demo config (deploy/demo.json, the config people run) with Chromium,
// a page of an app, and the page's sign-in box driven like a person.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { launchChromium } from './browser.mjs';
import { startPlaza, repoRoot } from './server.mjs';

export const DEMO = path.join(repoRoot, 'deploy/demo.json');
export const WAIT = { timeout: 10000 };

// Registers before/after hooks that start Plaza on the demo config (plus
// args) and Chromium; the returned object's plaza and browser are set once
// the hooks ran.
export function demoServer(args = ['--set', 'client.command_rate_limit=0']) {
  const env = { plaza: null, browser: null };
  before(async () => {
    env.plaza = await startPlaza({ noEcho: true, args: ['--config', DEMO, ...args] });
    env.browser = await launchChromium();
  });
  after(async () => {
    if (env.browser) await env.browser.close().catch(() => {});
    if (env.plaza) await env.plaza.stop();
  });
  return env;
}

// A new page of context at url (on plaza); page errors go to errors.
export async function openApp(plaza, context, url, errors) {
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  const resp = await page.goto(plaza.url + url);
  assert.equal(resp.status(), 200);
  return page;
}

// A page in the background gets its frames throttled (slow clicks): bring
// it to the front first.
export async function click(page, selector) {
  await page.bringToFront();
  await page.click(selector);
}

// Signs in through the page's sign-in box (web/common/plaza.js).
export async function signIn(page, name, color) {
  await page.bringToFront();
  await page.fill('#signin-name', name);
  await page.fill('#signin-color', color);
  await click(page, '#signin-go');
  await page.waitForSelector('#signin-who', WAIT);
}
