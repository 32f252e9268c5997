// Two pages on two nodes of a real cluster (a throwaway redis-server, one database in the
// test PostgreSQL, two `peerlink serve`) chat; the node of one page is killed, and that
// page moves to the other node by itself, rejoins and carries on, nothing missed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ARTIFACTS, launchBrowser, openChat, sha256, startNode } from './node.mjs';
import { acceptFile, ackGate, offerFile, transferCard, verified } from './files.mjs';
import { writeFileSync } from 'node:fs';

const PG_BIN = process.env.PG_BIN || '/usr/lib/postgresql/15/bin';
const stops = [];
after(() => { for (const stop of stops.reverse()) stop(); });

const freePort = () => new Promise((resolve) => {
  const server = createServer().listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
});

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'peerlink-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  stops.push(() => child.kill('SIGKILL'));
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => { s.end(); resolve(true); }).on('error', () => resolve(false));
    });
    if (up) return `redis://127.0.0.1:${port}/`;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('redis-server did not start');
}

function freshDatabase() {
  const admin = process.env.PEERLINK_TEST_POSTGRES_URL;
  assert.ok(admin, 'PEERLINK_TEST_POSTGRES_URL is not set: run the tests with `bash tests/run.sh`');
  const name = `pl_browser_${randomBytes(6).toString('hex')}`;
  execFileSync(join(PG_BIN, 'psql'), [admin, '-qc', `CREATE DATABASE ${name}`]);
  return admin.replace(/\/[^/]*$/, `/${name}`);
}

/** A redis-server, a fresh database and two nodes that have found each other. */
async function twoNodeCluster() {
  const redis = await startRedis();
  const database = freshDatabase();
  const secret = randomBytes(32).toString('hex');
  const cluster = (id) => ({
    PEERLINK_REDIS_URL: redis, PEERLINK_DATABASE_URL: database, PEERLINK_CLUSTER_SECRET: secret, PEERLINK_NODE_ID: id,
  });
  const one = await startNode({ env: cluster('node-1') });
  stops.push(() => one.stop());
  const two = await startNode({ env: cluster('node-2') });
  stops.push(() => two.stop());
  // Both nodes see each other before anyone connects.
  for (const node of [one, two]) {
    for (let i = 0; ; i++) {
      const { nodes } = await (await fetch(node.url + '/api/cluster/nodes')).json();
      if (nodes.length === 2) break;
      assert.ok(i < 300, 'the nodes did not find each other');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return [one, two];
}

async function say(page, text) {
  const composer = page.getByRole('textbox', { name: 'Message' });
  await composer.fill(text);
  await composer.press('Enter');
}

test('a page whose node is killed moves to another node and the chat carries on', async () => {
  const [one, two] = await twoNodeCluster();
  const browser = await launchBrowser();
  stops.push(() => browser.close());
  const problems = [];
  const alice = await openChat(browser, one.url, 'alice', { onProblem: (p) => problems.push(p) });
  const bob = await openChat(browser, two.url, 'bob', { onProblem: (p) => problems.push(p) });
  assert.equal((await alice.locator('#status-node').innerText()).trim(), '· node-1');
  assert.equal((await bob.locator('#status-node').innerText()).trim(), '· node-2');
  await alice.getByText('bob joined').waitFor();
  await say(alice, 'hello from node 1');
  await bob.getByText('hello from node 1').waitFor();
  await say(bob, 'hello from node 2');
  await alice.getByText('hello from node 2').waitFor();

  await one.kill();
  // Alice's page finds node 2 by itself and rejoins the lobby from where it was.
  await alice.locator('#status-node', { hasText: 'node-2' }).waitFor({ timeout: 20_000 });
  await say(bob, 'are you still there?');
  await alice.getByText('are you still there?').waitFor({ timeout: 20_000 });
  await say(alice, 'yes, through node 2');
  await bob.getByText('yes, through node 2').waitFor({ timeout: 20_000 });
  await alice.screenshot({ path: ARTIFACTS + 'cluster-alice-moved.png' });
  // Nothing shown twice, nothing missing.
  const texts = await alice.locator('#messages li.msg p').allInnerTexts();
  assert.deepEqual(texts.filter((t) => /node|still there/.test(t)), [
    'hello from node 1', 'hello from node 2', 'are you still there?', 'yes, through node 2',
  ]);
  // The only complaints a page may have are the lost connection's.
  assert.deepEqual(problems.filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(p)), []);
});

test('a file between pages on two nodes completes after the sender\'s node is killed mid-transfer', async () => {
  const [one, two] = await twoNodeCluster();
  const browser = await launchBrowser();
  stops.push(() => browser.close());
  const problems = [];
  const onProblem = (p) => problems.push(p);
  const dir = mkdtempSync(join(tmpdir(), 'peerlink-cluster-files-'));
  const data = randomBytes(12 * 1024 * 1024);
  const file = { path: join(dir, 'across.bin'), name: 'across.bin', size: data.length, sha256: sha256(data) };
  writeFileSync(file.path, data);
  // Bob's acknowledgements stop at 4 MiB, so the transfer is mid-way when node 1 dies.
  const gate = ackGate(4 * 1024 * 1024);
  const alice = await openChat(browser, one.url, 'alice', { onProblem });
  const bob = await openChat(browser, two.url, 'bob', { onProblem, beforeOpen: gate.install });
  await alice.getByRole('complementary').getByRole('button', { name: 'bob', exact: true }).waitFor();
  await offerFile(alice, 'bob', file);
  const received = await acceptFile(bob, 'alice', file);
  await gate.held;
  // Node 1 hosted the transfer and Alice's connection: both move to node 2.
  await one.kill();
  gate.hold = false;
  await alice.locator('#status-node', { hasText: 'node-2' }).waitFor({ timeout: 20_000 });
  try {
    await verified(transferCard(alice, file), file);
    await verified(received, file);
  } catch (e) {
    console.log('ALICE CARD:', await transferCard(alice, file).innerText().catch(() => '?'));
    console.log('BOB CARD:', await received.innerText().catch(() => '?'));
    throw e;
  }
  await alice.screenshot({ path: ARTIFACTS + 'cluster-transfer-after-kill.png' });
  assert.deepEqual(problems.filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(p)), []);
});
