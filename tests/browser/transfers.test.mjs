// Live file transfers between two chat pages in headless Chromium, as people do them: pick a
// file for a person, the other accepts, both watch the progress and end with the SHA-256
// and a "verified" mark, and the file the receiver saves has the source's SHA-256. Then the
// node is killed and restarted mid-transfer, and the sender reloads its page mid-transfer;
// both times the transfer completes. Screenshots go to tests/artifacts/transfer-*.png.
//
// To stop a transfer at a known point, the receiver's WebSocket goes through Playwright's
// WebSocket routing, which can hold back the receiver's `ack` frames past an offset: the
// sender's window then fills and everything waits there, as with a slow receiver.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARTIFACTS, nodeAndBrowser, openChat, sha256, startNode } from './node.mjs';
import { acceptFile, ackGate, offerFile, transferCard, verified } from './files.mjs';

const MiB = 1024 * 1024;
const ADMIN_TOKEN = 'browser-test-admin-token';
let node;
let browser;
const files = mkdtempSync(join(tmpdir(), 'peerlink-files-')); // sources and saved copies
after(() => rmSync(files, { recursive: true, force: true }));
const consoleProblems = [];
let nodeDown = false; // while the node is down, the browser reports refused connections itself

nodeAndBrowser((n, b) => { node = n; browser = b; });

function problem(text) {
  // Chromium itself reports a WebSocket that cannot connect while the node is down; the
  // page logs nothing. Every other console error or warning fails the test.
  if (nodeDown && /WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/ws' failed/.test(text)) return;
  consoleProblems.push(text);
}

function person(name, options = {}) {
  return openChat(browser, node.url, name, { ...options, onProblem: problem });
}

function sourceFile(name, size) {
  const path = join(files, name);
  const data = randomBytes(size);
  writeFileSync(path, data);
  return { path, name, size, sha256: sha256(data) };
}

/** Two people in the lobby, each in their own browser; resolves once the first sees the second. */
async function twoPeople(sender, receiver, receiverOptions = {}) {
  const first = await person(sender);
  const second = await person(receiver, receiverOptions);
  await first.getByRole('complementary').getByRole('button', { name: receiver, exact: true }).waitFor();
  return [first, second];
}

/**
 * A transfer of `file` from `sender` to `receiver`, stopped with `holdMiB` MiB acknowledged
 * and stored (the receiver's later acks are held back by its gate). Resolves once the
 * sender's card shows that offset.
 */
async function stalledTransfer(senderName, receiverName, file, holdMiB) {
  const gate = ackGate(holdMiB * MiB);
  const [sender, receiver] = await twoPeople(senderName, receiverName, { beforeOpen: gate.install });
  await offerFile(sender, receiverName, file);
  const card = await acceptFile(receiver, senderName, file);
  await gate.held;
  const sent = transferCard(sender, file);
  await sent.getByText(new RegExp(`^${holdMiB}\\.0 MiB of ${file.size / MiB} MiB`)).waitFor();
  return { sender, receiver, gate, sent, card };
}

/** Saves the received file through the card's Save link; returns the saved bytes' digest. */
async function saveAndDigest(page, card, file) {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    card.getByRole('link', { name: `Save ${file.name}` }).click(),
  ]);
  assert.equal(download.suggestedFilename(), file.name);
  const saved = join(files, `saved-${Date.now()}-${file.name}`);
  await download.saveAs(saved);
  return sha256(readFileSync(saved));
}

test('a 20 MiB file goes from alice to bob and bob saves the same bytes', async () => {
  const file = sourceFile('report-20MiB.bin', 20 * MiB);
  const [alice, bob] = await twoPeople('alice', 'bob', { viewport: { width: 390, height: 800 } });

  await offerFile(alice, 'bob', file);
  const sent = transferCard(alice, file);
  await sent.getByText('Waiting for bob to accept').waitFor();
  await alice.screenshot({ path: ARTIFACTS + 'transfer-1-offered.png' });

  // Bob, still in #lobby, is told (and the conversation counts it as unread); "Show"
  // takes him there. He sees who offers what, and how big it is, before he accepts.
  await bob.getByRole('navigation').getByRole('button', { name: /^@alice.*1 unread/ }).waitFor();
  await bob.getByRole('status').filter({ hasText: 'alice offers report-20MiB.bin (20 MiB).' }).waitFor();
  await bob.screenshot({ path: ARTIFACTS + 'transfer-1b-told-phone.png' });
  await bob.getByRole('button', { name: 'Show', exact: true }).click();
  await bob.getByRole('heading', { name: 'Direct messages with alice' }).waitFor();
  const card = transferCard(bob, file);
  assert.match(await card.innerText(), /File: report-20MiB\.bin\s+20 MiB\s+from alice/);
  await bob.screenshot({ path: ARTIFACTS + 'transfer-2-offer-phone.png' });
  await acceptFile(bob, 'alice', file);

  await verified(sent, file);
  await verified(card, file);
  assert.match(await sent.innerText(), /Complete: 20 MiB sent to bob/);
  await alice.screenshot({ path: ARTIFACTS + 'transfer-3-sent.png' });
  await bob.screenshot({ path: ARTIFACTS + 'transfer-4-received-phone.png' });
  assert.equal(await saveAndDigest(bob, card, file), file.sha256);
  assert.deepEqual(consoleProblems, [], 'the pages logged errors or warnings');
});

test('the node is killed and restarted mid-transfer, and the transfer completes', async () => {
  const file = sourceFile('backup-20MiB.bin', 20 * MiB);
  // Dave's acks stop at 8 MiB: the node has stored that offset before carol hears of it.
  const { sender: carol, receiver: dave, gate, sent, card } = await stalledTransfer('carol', 'dave', file, 8);
  await carol.screenshot({ path: ARTIFACTS + 'transfer-5-stalled.png' });

  // The operator sees the transfer in the admin console.
  const admin = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  admin.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problem(`admin: ${m.text()}`); });
  await admin.goto(node.url + '/admin');
  await admin.locator('#token-input').fill(ADMIN_TOKEN);
  await admin.keyboard.press('Enter');
  const row = admin.locator('#transfers tr').filter({ hasText: file.name });
  await row.getByText('8.0 MiB / 20 MiB').waitFor();
  assert.match(await row.innerText(), /carol\s+dave\s+backup-20MiB\.bin\s+20 MiB/);
  await admin.screenshot({ path: ARTIFACTS + 'transfer-6-admin.png', fullPage: true });
  await admin.context().close();

  nodeDown = true;
  gate.hold = false;
  await node.restart();
  await carol.getByText('connected', { exact: true }).waitFor();
  await dave.getByText('connected', { exact: true }).waitFor();
  nodeDown = false;

  await verified(sent, file);
  await verified(card, file);
  await carol.screenshot({ path: ARTIFACTS + 'transfer-7-after-restart.png' });
  assert.equal(await saveAndDigest(dave, card, file), file.sha256);
  assert.deepEqual(consoleProblems, [], 'the pages logged errors or warnings');
});

test('the sender reloads mid-transfer, picks the file again and the transfer completes', async () => {
  const file = sourceFile('photos-12MiB.tar', 12 * MiB);
  const { sender: erin, receiver: frank, gate, card } = await stalledTransfer('erin', 'frank', file, 4);

  await erin.reload();
  await erin.getByText('connected', { exact: true }).waitFor();
  gate.hold = false;
  await erin.getByRole('navigation').getByRole('button', { name: /^@frank/ }).click();
  const sent = transferCard(erin, file);
  await sent.getByText(/Pick photos-12MiB\.tar again to resume from 4\.0 MiB/).waitFor();
  await erin.screenshot({ path: ARTIFACTS + 'transfer-8-pick-again.png' });

  // The wrong file is refused with a reason; the right one resumes the transfer.
  const other = sourceFile('other.bin', 1000);
  const pick = async (f) => {
    const [chooser] = await Promise.all([
      erin.waitForEvent('filechooser'),
      sent.getByRole('button', { name: `Pick ${file.name} again…` }).click(),
    ]);
    await chooser.setFiles(f.path);
  };
  await pick(other);
  await sent.getByText(/That is not the same file/).waitFor();
  await pick(file);
  await verified(sent, file);
  await verified(card, file);
  assert.equal(await saveAndDigest(frank, card, file), file.sha256);
  assert.deepEqual(consoleProblems, [], 'the pages logged errors or warnings');
});

/** Drops a file made in the page (`size` random bytes) on `selector`; returns its SHA-256. */
async function dropFile(page, selector, name, size) {
  const dataTransfer = await page.evaluateHandle(async ({ name, size }) => {
    const bytes = new Uint8Array(size);
    for (let at = 0; at < size; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    window.droppedSha256 = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, { type: 'application/octet-stream' }));
    return transfer;
  }, { name, size });
  await page.dispatchEvent(selector, 'dragover', { dataTransfer });
  await page.dispatchEvent(selector, 'drop', { dataTransfer });
  return page.evaluate(() => window.droppedSha256);
}

test('a file dropped on a room reaches its members; a person offline is named on the card', async () => {
  const [gina, hugo] = await twoPeople('gina', 'hugo');
  const ines = await person('ines');
  await gina.getByRole('complementary').getByRole('button', { name: 'ines', exact: true }).waitFor();
  const file = { name: 'minutes.pdf', size: 3 * MiB + 17 };
  file.sha256 = await dropFile(gina, '[data-conv="#lobby"]', file.name, file.size);
  const sent = transferCard(gina, file);
  await sent.getByText('Waiting for someone in #lobby to accept').waitFor();

  const card = transferCard(hugo, file);
  await card.getByText('gina offers this file in #lobby.').waitFor();
  await card.getByRole('button', { name: `Accept ${file.name}` }).click();
  await verified(sent, file);
  await verified(card, file);
  assert.equal(await saveAndDigest(hugo, card, file), file.sha256);

  // Ines was offered it too and did not answer: once it is over, her card says so and
  // offers nothing to accept.
  const missed = transferCard(ines, file);
  await missed.getByText('You did not take this file; the others in #lobby received it. Ask gina to send it again if you want it.').waitFor();
  assert.equal(await missed.getByRole('button', { name: `Accept ${file.name}` }).count(), 0);

  // Hugo goes away; a file for him is refused with his name and what to do.
  await gina.getByRole('complementary').getByRole('button', { name: 'hugo', exact: true }).click();
  await gina.getByRole('navigation').getByRole('button', { name: /^#lobby/ }).click();
  await hugo.context().close();
  await gina.getByText('hugo went offline').waitFor();
  await gina.getByRole('navigation').getByRole('button', { name: /^@hugo/ }).click();
  const late = { name: 'late.txt', size: 10 };
  await dropFile(gina, '.chat', late.name, late.size);
  await transferCard(gina, late).getByText('hugo is offline: offer the file when they are online.').waitFor();
  await gina.screenshot({ path: ARTIFACTS + 'transfer-9-offline.png' });
  assert.deepEqual(consoleProblems, [], 'the pages logged errors or warnings');
});

test('a file over the node\'s size limit is refused on the card before anything is sent', async () => {
  const small = await startNode({ env: { PEERLINK_MAX_FILE_SIZE: String(MiB) } });
  const pages = [];
  try {
    const ivy = await openChat(browser, small.url, 'ivy', { onProblem: problem });
    pages.push(ivy, await openChat(browser, small.url, 'jack', { onProblem: problem }));
    await ivy.getByRole('complementary').getByRole('button', { name: 'jack', exact: true }).waitFor();
    const big = { name: 'video.mp4', size: MiB + 1 };
    await dropFile(ivy, '[data-user]', big.name, big.size);
    await transferCard(ivy, big).getByText('video.mp4 is 1,048,577 bytes: too large, the limit on this node is 1,048,576 bytes. Compress or split it.').waitFor();
    await ivy.screenshot({ path: ARTIFACTS + 'transfer-10-too-large.png' });
  } finally {
    for (const page of pages) await page.context().close(); // before their node goes away
    small.stop();
  }
  assert.deepEqual(consoleProblems, [], 'the pages logged errors or warnings');
});

test('the receiver reloads mid-transfer and the transfer goes on from its stored part', async () => {
  const file = sourceFile('dataset-16MiB.csv', 16 * MiB);
  const { receiver: liam, gate, sent } = await stalledTransfer('kate', 'liam', file, 4);

  gate.hold = false;
  await liam.reload();
  await liam.getByText('connected', { exact: true }).waitFor();
  await liam.getByRole('navigation').getByRole('button', { name: /^@kate/ }).click();
  const card = transferCard(liam, file);
  await verified(sent, file);
  await verified(card, file);
  assert.equal(await saveAndDigest(liam, card, file), file.sha256);
  assert.deepEqual(consoleProblems, [], 'the pages logged errors or warnings');
});

test('a browser that cannot write to disk says so, keeps the file in memory and still checks it', async () => {
  const file = sourceFile('small-5MiB.bin', 5 * MiB);
  // No workers in noah's page: no origin-private file system writes from it.
  const [mona, noah] = await twoPeople('mona', 'noah', { beforeOpen: (page) => page.addInitScript(() => { delete window.Worker; }) });
  await offerFile(mona, 'noah', file);
  await noah.getByRole('navigation').getByRole('button', { name: /^@mona/ }).click();
  const card = transferCard(noah, file);
  await card.getByText('This browser cannot write the file to disk while it arrives: it is kept in memory until you save it.').waitFor();
  await noah.screenshot({ path: ARTIFACTS + 'transfer-11-memory-only.png' });
  await card.getByRole('button', { name: `Accept ${file.name}` }).click();
  await verified(transferCard(mona, file), file);
  await verified(card, file);
  assert.equal(await saveAndDigest(noah, card, file), file.sha256);
  assert.deepEqual(consoleProblems, [], 'the pages logged errors or warnings');
});

test('a file damaged on its way to the receiver is flagged, not marked verified', async () => {
  const file = sourceFile('ledger-2MiB.db', 2 * MiB);
  // Between the node and pete's page one bit of the first data frame is flipped.
  let flipped = false;
  const [olga, pete] = await twoPeople('olga', 'pete', {
    beforeOpen: (page) => page.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      server.onMessage((message) => {
        if (!flipped && typeof message !== 'string' && message.length > 100) {
          message = Buffer.from(message);
          message[100] ^= 1;
          flipped = true;
        }
        ws.send(message);
      });
    }),
  });
  await offerFile(olga, 'pete', file);
  const card = await acceptFile(pete, 'olga', file);
  await verified(transferCard(olga, file), file); // the node relayed (and hashed) the right bytes
  await card.getByText('✗ checksum mismatch').waitFor();
  await card.getByText(/Checksum mismatch: the file in this browser has SHA-256 [0-9a-f]{64}\. Do not trust this copy; ask for the file again\./).waitFor();
  assert.equal(await card.getByText('✓ verified').count(), 0);
  assert.ok(flipped);
  await pete.screenshot({ path: ARTIFACTS + 'transfer-12-mismatch.png' });
  assert.deepEqual(consoleProblems, [], 'the pages logged errors or warnings');
});

test('the sender reloads while the offer waits; the receiver accepts later and the file still arrives', async () => {
  const file = sourceFile('draft-3MiB.odt', 3 * MiB + 3);
  const [quinn, rosa] = await twoPeople('quinn', 'rosa');
  await offerFile(quinn, 'rosa', file);
  await transferCard(quinn, file).getByText('Waiting for rosa to accept').waitFor();

  await quinn.reload();
  await quinn.getByText('connected', { exact: true }).waitFor();
  await quinn.getByRole('navigation').getByRole('button', { name: /^@rosa/ }).click();
  const sent = transferCard(quinn, file);
  await sent.getByText('Waiting for rosa to accept').waitFor(); // the node says the offer still stands

  const card = await acceptFile(rosa, 'quinn', file);
  await sent.getByText(/Pick draft-3MiB\.odt again to resume from 0 B/).waitFor();
  const [chooser] = await Promise.all([
    quinn.waitForEvent('filechooser'),
    sent.getByRole('button', { name: `Pick ${file.name} again…` }).click(),
  ]);
  await chooser.setFiles(file.path);
  await verified(sent, file);
  await verified(card, file);
  assert.equal(await saveAndDigest(rosa, card, file), file.sha256);
  assert.deepEqual(consoleProblems, [], 'the pages logged errors or warnings');
});
