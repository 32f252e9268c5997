// Starts a real `peerlink` node on a free loopback port for the browser tests.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const BIN = process.env.PEERLINK_BIN || new URL('../../target/debug/peerlink', import.meta.url).pathname;

export async function startNode() {
  const dataDir = mkdtempSync(join(tmpdir(), 'peerlink-browser-'));
  const child = spawn(BIN, ['serve'], {
    env: { ...process.env, PEERLINK_BIND: '127.0.0.1:0', PEERLINK_DATA_DIR: dataDir, PEERLINK_ADMIN_TOKEN: 'browser-test-admin-token', RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
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
  return { url, stop: () => child.kill('SIGKILL') };
}
