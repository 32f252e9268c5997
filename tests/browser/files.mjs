// What the browser tests do with files on the page: offer, accept, hold back
// acknowledgements, and check the verified mark.
import assert from 'node:assert/strict';

/**
 * Route a page's WebSocket through the test: while `gate.hold` is set, the page's `ack`
 * frames past `gate.offset` are dropped, and `gate.held` resolves with the first of them.
 */
export function ackGate(offset) {
  const gate = { hold: true, offset };
  gate.held = new Promise((resolve) => { gate.release = resolve; });
  gate.install = (page) => page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      if (gate.hold && typeof message === 'string') {
        const frame = JSON.parse(message);
        if (frame.type === 'ack' && frame.offset > gate.offset) return gate.release(frame.offset);
      }
      server.send(message);
    });
  });
  return gate;
}

/** In the sender's page: open the conversation with `to` and pick `file` to send there. */
export async function offerFile(page, to, file) {
  await page.getByRole('complementary').getByRole('button', { name: to, exact: true }).click();
  await page.getByRole('heading', { name: `Direct messages with ${to}` }).waitFor();
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser'),
    page.getByRole('button', { name: 'Send a file…' }).click(),
  ]);
  await chooser.setFiles(file.path);
}

/** In the receiver's page: open the conversation the offer came in and accept it. */
export async function acceptFile(page, from, file) {
  await page.getByRole('navigation').getByRole('button', { name: new RegExp(`^@${from}`) }).click();
  const card = transferCard(page, file);
  await card.getByText(`${from} offers this file.`).waitFor();
  await card.getByRole('button', { name: `Accept ${file.name}` }).click();
  return card;
}

export const transferCard = (page, file) => page.locator('.transfer').filter({ hasText: `File: ${file.name}` });

/** Waits for the "verified" mark with the source's digest on a card. */
export async function verified(card, file) {
  await card.getByText('✓ verified').waitFor({ timeout: 60_000 });
  assert.match(await card.innerText(), new RegExp(`SHA-256 ${file.sha256}`));
}
