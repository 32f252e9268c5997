// Two people chat on the page the node serves, in headless Chromium: each sees the other's
// messages and presence, the page keeps working at phone width, and nothing is logged to the
// browser console. Screenshots of each step go to tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { startNode } from './node.mjs';

const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
let node;
let browser;
const consoleProblems = [];

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  node = await startNode();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  node?.stop();
});

async function person(name, viewport = { width: 1100, height: 700 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') consoleProblems.push(`${name}: ${m.text()}`); });
  page.on('pageerror', (e) => consoleProblems.push(`${name}: ${e.message}`));
  await page.goto(node.url + '/');
  await page.locator('#name-input').fill(name);
  await page.keyboard.press('Enter');
  await page.getByText('connected', { exact: true }).waitFor();
  return page;
}

async function say(page, text) {
  const composer = page.getByRole('textbox', { name: 'Message' });
  await composer.fill(text);
  await composer.press('Enter');
}

test('two people chat in the lobby and see each other', async () => {
  const alice = await person('alice');
  const bob = await person('bob', { width: 390, height: 800 });
  await alice.getByText('bob joined').waitFor();
  await say(alice, 'hello from alice');
  await bob.getByText('hello from alice').waitFor();
  await say(bob, 'hi alice, bob here');
  await alice.getByText('hi alice, bob here').waitFor();
  await alice.screenshot({ path: ARTIFACTS + 'chat-alice.png' });
  await bob.screenshot({ path: ARTIFACTS + 'chat-bob-phone.png' });

  // Both appear in each other's member list.
  const members = alice.getByRole('complementary').filter({ hasText: 'Members' });
  await members.getByText('bob').waitFor();

  // A reload comes back as the same person, in the same room, with the history.
  await bob.reload();
  await bob.getByText('hi alice, bob here').waitFor();
  await bob.getByText('Signed in as').waitFor();
  assert.match(await bob.locator('body').innerText(), /Signed in as\s+bob/);

  assert.deepEqual(consoleProblems, [], 'the page logged errors or warnings');
});
