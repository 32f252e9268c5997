// Browser-to-browser file transfer through one node, measured: two headless Chromium
// pages (the chat page the node serves), one sends a file of SIZE MiB to the other, who
// accepts. Prints one JSON line per run and a summary with medians.
//
//   cargo build --release
//   (cd tests/browser && npm ci)
//   node benches/browser_transfer.mjs [SIZE_MIB=200] [RUNS=3]
//
// "relay" runs from the click on Accept to the receiver's card leaving the streaming state
// (every byte written to the receiver's private storage and acknowledged); "verify" is the
// receiver's SHA-256 of what it wrote (JavaScript, read back from disk). Bounded: each
// run gives up after 5 minutes.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

process.env.PEERLINK_BIN ||= new URL('../target/release/peerlink', import.meta.url).pathname;
const { launchBrowser, openChat, startNode } = await import('../tests/browser/node.mjs');

const MiB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] || 200);
const runs = Number(process.argv[3] || 3);
const LIMIT_MS = 5 * 60 * 1000;

const dir = mkdtempSync(join(tmpdir(), 'peerlink-bench-'));
const path = join(dir, `bench-${sizeMiB}MiB.bin`);
const data = Buffer.allocUnsafe(sizeMiB * MiB);
for (let at = 0; at < data.length; at += MiB) randomBytes(MiB).copy(data, at);
writeFileSync(path, data);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = [];
for (let run = 1; run <= runs; run++) {
  const node = await startNode();
  const browser = await launchBrowser();
  try {
    const alice = await openChat(browser, node.url, 'alice');
    const bob = await openChat(browser, node.url, 'bob');
    await alice.getByRole('complementary').getByRole('button', { name: 'bob', exact: true }).click();
    const [chooser] = await Promise.all([
      alice.waitForEvent('filechooser'),
      alice.getByRole('button', { name: 'Send a file…' }).click(),
    ]);
    await chooser.setFiles(path);
    await bob.getByRole('navigation').getByRole('button', { name: /^@alice/ }).click();
    const name = `bench-${sizeMiB}MiB.bin`;
    const start = Date.now();
    await bob.getByRole('button', { name: `Accept ${name}` }).click();
    await bob.locator('.transfer[data-state="verifying"], .transfer[data-state="done"]').first().waitFor({ timeout: LIMIT_MS });
    const relayed = Date.now();
    await bob.getByText('✓ verified').waitFor({ timeout: LIMIT_MS });
    const verified = Date.now();
    const result = {
      run,
      size_mib: sizeMiB,
      relay_ms: relayed - start,
      relay_mib_s: +(sizeMiB / ((relayed - start) / 1000)).toFixed(1),
      verify_ms: verified - relayed,
      verify_mib_s: +(sizeMiB / ((verified - relayed) / 1000)).toFixed(1),
    };
    results.push(result);
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
    node.stop();
  }
}
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({
  summary: true,
  size_mib: sizeMiB,
  runs,
  relay_mib_s_median: median(results.map((r) => r.relay_mib_s)),
  verify_mib_s_median: median(results.map((r) => r.verify_mib_s)),
}));
