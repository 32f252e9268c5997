// Two people chat on the page the node serves, in headless Chromium: each sees the other's
// messages and presence, the page keeps working at phone width, and nothing is logged to the
// browser console. Screenshots of each step go to tests/artifacts/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ARTIFACTS, nodeAndBrowser, openChat } from './node.mjs';

let node;
let browser;
const consoleProblems = [];

nodeAndBrowser((n, b) => { node = n; browser = b; });

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
  await alice.getByRole('complementary').getByRole('button', { name: 'bob', exact: true }).waitFor();
  await bob.getByRole('complementary').getByRole('button', { name: 'alice', exact: true }).waitFor();
  await alice.getByRole('complementary').getByText('alice (you)').waitFor();

  // A reload comes back as the same person, in the same room, with the history.
  await bob.reload();
  await bob.getByText('hi alice, bob here').waitFor();
  await bob.getByText('Signed in as').waitFor();
  assert.match(await bob.locator('body').innerText(), /Signed in as\s+bob/);

  assert.deepEqual(consoleProblems, [], 'the page logged errors or warnings');
});

async function joinRoom(page, room) {
  await page.getByLabel('Join a room').fill(room);
  await page.getByLabel('Join a room').press('Enter');
  await page.getByRole('heading', { name: `#${room}` }).waitFor();
  await page.getByRole('navigation').getByRole('button', { name: new RegExp(`^#${room}`) }).waitFor();
}

/** The texts of the chat messages on screen, in order. */
const shownTexts = (page) => page.locator('#messages li.msg p').allInnerTexts();

/**
 * Routes a page's WebSocket through the test. `cut()` closes the connection from the node's
 * side; while `hold` is set, what the page sends (its `hello` first) is kept back, so the
 * page stays away from the node until `release()`.
 */
function connectionGate() {
  const gate = { hold: false, held: [], server: null, waiting: null };
  gate.install = (page) => page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    gate.server = server;
    ws.onMessage((message) => {
      if (gate.hold && server === gate.server) {
        gate.held.push(message);
        gate.waiting?.();
        return;
      }
      server.send(message);
    });
  });
  gate.heldSomething = () => new Promise((resolve) => { gate.waiting = resolve; if (gate.held.length) resolve(); });
  gate.release = () => {
    gate.hold = false;
    for (const message of gate.held.splice(0)) gate.server.send(message);
  };
  return gate;
}

test('a dropped connection comes back by itself and shows what was missed, once each', async () => {
  const gate = connectionGate();
  const kim = await person('kim');
  const lee = await openChat(browser, node.url, 'lee', { onProblem: (p) => consoleProblems.push(p), beforeOpen: gate.install });
  for (const page of [kim, lee]) await joinRoom(page, 'ops');
  await lee.getByText('kim joined').waitFor().catch(() => {}); // lee may have joined first
  await say(kim, 'before the drop');
  await lee.getByText('before the drop').waitFor();

  // The node drops lee; lee's page tries again at once but stays away until released.
  gate.hold = true;
  await gate.server.close();
  const held = gate.heldSomething();
  await lee.locator('#status[data-state="down"], #status[data-state="busy"]').waitFor();
  await held;
  for (const text of ['missed one', 'missed two', 'missed three']) {
    await say(kim, text);
    await kim.locator('#messages li.msg:not(.pending)').filter({ hasText: text }).waitFor();
  }
  await lee.screenshot({ path: ARTIFACTS + 'chat-lee-reconnecting.png' });

  gate.release();
  await lee.getByText('connected', { exact: true }).waitFor();
  await lee.getByText('missed three').waitFor();
  await say(kim, 'after the return');
  await lee.getByText('after the return').waitFor();
  const texts = await shownTexts(lee);
  assert.deepEqual(texts.filter((t) => t !== ''), ['before the drop', 'missed one', 'missed two', 'missed three', 'after the return'],
    'each message once, in order, nothing missing');
  await lee.screenshot({ path: ARTIFACTS + 'chat-lee-back.png' });
  assert.deepEqual(consoleProblems, [], 'the page logged errors or warnings');
});

test('older messages load when scrolling up, without gaps or repeats', async () => {
  const mia = await person('mia');
  await joinRoom(mia, 'archive');
  // 70 messages, paced under the node's rate limit (20 per second).
  await mia.evaluate(async () => {
    const text = document.getElementById('text');
    for (let i = 1; i <= 70; i++) {
      text.value = `note ${i}`;
      document.getElementById('composer').requestSubmit();
      await new Promise((r) => setTimeout(r, 70));
    }
  });
  await mia.locator('#messages li.msg:not(.pending)').getByText('note 70', { exact: true }).waitFor();

  const ned = await person('ned');
  await joinRoom(ned, 'archive');
  await ned.getByText('note 70', { exact: true }).waitFor();
  assert.equal((await shownTexts(ned)).length, 50, 'a newcomer sees the last 50 messages');
  await ned.locator('#log').hover();
  await ned.mouse.wheel(0, -20_000);
  await ned.getByText('note 1', { exact: true }).waitFor();
  const want = Array.from({ length: 70 }, (_, i) => `note ${i + 1}`);
  assert.deepEqual(await shownTexts(ned), want);
  await ned.screenshot({ path: ARTIFACTS + 'chat-history.png' });
  assert.deepEqual(consoleProblems, [], 'the page logged errors or warnings');
});

test('a flood is refused by the rate limit, and the page says when to try again', async () => {
  const oli = await person('oli');
  await joinRoom(oli, 'flood');
  await oli.evaluate(() => {
    const text = document.getElementById('text');
    for (let i = 1; i <= 80; i++) {
      text.value = `flood ${i}`;
      document.getElementById('composer').requestSubmit();
    }
  });
  const error = oli.locator('#send-error');
  await error.getByText(/^Sending too fast: wait (a second|\d+ s), then send it again\.$/).waitFor();
  const refused = oli.locator('#messages li.msg.failed');
  const count = await refused.count();
  assert.ok(count > 0, 'the refused messages are marked');
  await oli.screenshot({ path: ARTIFACTS + 'chat-rate-limited.png' });

  // "Send again" on a refused message posts it (at the end), once the budget is back.
  const first = refused.first();
  const text = await first.locator('p').innerText();
  await first.getByRole('button', { name: 'Send again' }).click();
  await oli.locator('#messages li.msg:not(.pending):not(.failed)').last().getByText(text, { exact: true }).waitFor();
  assert.equal(await refused.count(), count - 1);
  assert.deepEqual(consoleProblems, [], 'the page logged errors or warnings');
});
