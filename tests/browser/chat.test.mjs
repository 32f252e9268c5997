// Two people chat on the page the node serves, in headless Chromium: each sees the other's
// messages and presence, the page keeps working at phone width, and nothing is logged to the
// browser console. Screenshots of each step go to tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ARTIFACTS, launchBrowser, openChat, startNode } from './node.mjs';

let node;
let browser;
const consoleProblems = [];

before(async () => {
  node = await startNode();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  node?.stop();
});

function person(name, viewport) {
  return openChat(browser, node.url, name, { viewport, onProblem: (p) => consoleProblems.push(p) });
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
