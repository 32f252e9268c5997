// The page's own SHA-256 (static/sha256.js) against node:crypto: every length around the
// block and padding edges, random splits of one input, and a few MiB at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Sha256 } from '../../static/sha256.js';
import { sha256 } from './node.mjs';



test('empty input and "abc" give the standard digests', () => {
  assert.equal(new Sha256().hex(), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(new Sha256().update(Buffer.from('abc')).hex(), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('every length from 0 to 300 bytes matches node:crypto', () => {
  const data = randomBytes(300);
  for (let n = 0; n <= 300; n++) {
    assert.equal(new Sha256().update(data.subarray(0, n)).hex(), sha256(data.subarray(0, n)), `length ${n}`);
  }
});

test('random splits of 100 KiB give the digest of the whole', () => {
  const data = randomBytes(100 * 1024);
  const want = sha256(data);
  for (let round = 0; round < 20; round++) {
    const h = new Sha256();
    for (let at = 0; at < data.length;) {
      const n = Math.min(data.length - at, Math.floor(Math.random() * 5000));
      h.update(data.subarray(at, at + n));
      at += n;
    }
    assert.equal(h.hex(), want, `round ${round}`);
  }
});

test('4 MiB in one piece and as an ArrayBuffer', () => {
  const data = randomBytes(4 * 1024 * 1024);
  const copy = data.buffer.slice(data.byteOffset, data.byteOffset + data.length);
  assert.equal(new Sha256().update(copy).hex(), sha256(data));
});
