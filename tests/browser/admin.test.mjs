// An operator opens the admin console the node serves, signs in with the admin token, sees
// two chatting people's sessions and kicks one of them: that person's chat page loses its
// connection, and the console's session list follows. Nothing is logged to the admin page's
// console. Screenshots go to tests/artifacts/admin-*.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ARTIFACTS, nodeAndBrowser, openChat } from './node.mjs';

const ADMIN_TOKEN = 'browser-test-admin-token';
let node;
let browser;
const consoleProblems = [];

nodeAndBrowser((n, b) => { node = n; browser = b; });

function person(name) {
  return openChat(browser, node.url, name);
}

async function adminPage(viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') consoleProblems.push(`admin: ${m.text()}`); });
  page.on('pageerror', (e) => consoleProblems.push(`admin: ${e.message}`));
  await page.goto(node.url + '/admin');
  return page;
}

test('the admin console shows sessions and kicks one', async () => {
  const alice = await person('alice');
  const bob = await person('bob');

  const admin = await adminPage({ width: 1280, height: 900 });
  await admin.locator('#token-input').fill(ADMIN_TOKEN);
  await admin.screenshot({ path: ARTIFACTS + 'admin-login.png' });
  await admin.getByRole('button', { name: 'Open console' }).click();

  const sessions = admin.locator('#sessions-table');
  await sessions.getByRole('rowheader', { name: 'alice', exact: true }).waitFor();
  await sessions.getByRole('rowheader', { name: 'bob', exact: true }).waitFor();
  assert.equal(await admin.evaluate(() => sessionStorage.getItem('peerlink.admin-token')), ADMIN_TOKEN);
  // Bob talks; the next polls fill in the rates and the charts.
  for (const text of ['one', 'two', 'three']) {
    const composer = bob.getByRole('textbox', { name: 'Message' });
    await composer.fill(text);
    await composer.press('Enter');
    await bob.getByText(text, { exact: true }).waitFor();
  }
  await admin.getByText(/^now .*; 3 stored$/).waitFor();
  await admin.getByText(/^now 0\.0\/s, peak (?!0\.0\/)/).waitFor();
  await admin.screenshot({ path: ARTIFACTS + 'admin-console.png', fullPage: true });

  // Record every status text alice's page shows from now on: it reconnects within a second.
  await alice.evaluate(() => {
    const status = document.getElementById('status-text');
    window.statusSeen = [];
    new MutationObserver(() => window.statusSeen.push(status.textContent))
      .observe(status, { childList: true, characterData: true, subtree: true });
  });
  const aliceRow = sessions.locator('tr', { has: admin.getByRole('rowheader', { name: 'alice', exact: true }) });
  const kickedSession = await aliceRow.getAttribute('data-session');
  assert.ok(kickedSession, 'the row carries its session id');

  await admin.getByRole('button', { name: 'Kick alice', exact: true }).click();
  await alice.waitForFunction(() => window.statusSeen.some((s) => s !== 'connected'));
  await admin.getByText('alice was disconnected.').waitFor();
  // The kicked session leaves the table (alice comes back with a new session); bob stays.
  await sessions.locator(`tr[data-session="${kickedSession}"]`).waitFor({ state: 'detached' });
  await sessions.getByRole('rowheader', { name: 'bob', exact: true }).waitFor();
  await alice.getByText('connected', { exact: true }).waitFor();
  await admin.screenshot({ path: ARTIFACTS + 'admin-after-kick.png', fullPage: true });

  // At phone width the console stays usable.
  const phone = await adminPage({ width: 390, height: 800 }); // a new tab: sign in again
  await phone.locator('#token-input').fill(ADMIN_TOKEN);
  await phone.keyboard.press('Enter');
  await phone.locator('#sessions-table').getByRole('rowheader', { name: 'bob', exact: true }).waitFor();
  await phone.screenshot({ path: ARTIFACTS + 'admin-phone.png', fullPage: true });

  // Forgetting the token brings the sign-in form back.
  await admin.getByRole('button', { name: 'Forget token' }).click();
  await admin.locator('#token-input').waitFor();
  assert.equal(await admin.evaluate(() => sessionStorage.getItem('peerlink.admin-token')), null);

  await bob.close();
  assert.deepEqual(consoleProblems, [], 'the admin page logged errors or warnings');
});
