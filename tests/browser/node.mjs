// Starts a real `peerlink` node on a free loopback port for the browser tests.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before } from 'node:test';

const BIN = process.env.PEERLINK_BIN || new URL('../../target/debug/peerlink', import.meta.url).pathname;

/**
 * A node on a free loopback port with its own data directory. `restart()` kills it with
 * SIGKILL (nothing is flushed or said goodbye) and starts it again on the same address and
 * data, as an operator restarting a crashed node would. `env` adds settings (PEERLINK_*).
 */
export async function startNode({ env = {} } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'peerlink-browser-'));
  const node = { dataDir, url: null, child: null };
  const launch = async (bind) => {
    const child = spawn(BIN, ['serve'], {
      env: { ...process.env, PEERLINK_BIND: bind, PEERLINK_DATA_DIR: dataDir, PEERLINK_ADMIN_TOKEN: 'browser-test-admin-token', RUST_LOG: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    node.child = child;
    node.url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the node did not start within 60 s')), 60_000);
      child.once('exit', (code) => reject(new Error(`the node exited with ${code}`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        const match = line.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
    });
  };
  const kill = async () => {
    const child = node.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  };
  await launch('127.0.0.1:0');
  node.stop = () => node.child?.kill('SIGKILL');
  node.kill = kill;
  node.restart = async () => {
    await kill();
    await launch(new URL(node.url).host);
  };
  return node;
}

/**
 * A node and a browser for one test file: started before its tests, stopped after them.
 * `use(node, browser)` receives them once they run; `options` go to `startNode`.
 */
export function nodeAndBrowser(use, options) {
  let node;
  let browser;
  before(async () => {
    node = await startNode(options);
    browser = await launchBrowser();
    use(node, browser);
  });
  after(async () => {
    await browser?.close();
    node?.stop();
  });
}

/** SHA-256 in lowercase hex, as `sha256sum` prints it. */
export const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** Where screenshots go (tests/artifacts/), created on first use. */
export const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;

/** Debian's Chromium, headless, with nothing that would reach outside the machine. */
export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/**
 * A person in their own browser context, signed in on the chat page as `name`.
 * `onProblem` hears every console error or warning and page error.
 */
export async function openChat(browser, url, name, { viewport = { width: 1100, height: 700 }, onProblem, beforeOpen } = {}) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  await beforeOpen?.(page);
  if (onProblem) {
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') onProblem(`${name}: ${m.text()}`); });
    page.on('pageerror', (e) => onProblem(`${name}: ${e.message}`));
  }
  await page.goto(url + '/');
  await page.locator('#name-input').fill(name);
  await page.keyboard.press('Enter');
  await page.getByText('connected', { exact: true }).waitFor();
  return page;
}
