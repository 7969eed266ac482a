/**
 * Tiny blocks on a file big enough that one 16 MiB hash chunk holds more blocks
 * than one hash request may cover: the engine must cut its requests to the agent's
 * limit (op table), not fail with PROTOCOL_ERROR. Locally and over a real sshd;
 * the target is compared byte for byte.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashRequestBlocks } from '../../src/engine/plan.js';
import { MAX_HASH_BLOCKS } from '../../src/protocol/limits.js';
import { jsonOf, killAllClis, runCli } from '../support/cli-child.js';
import { expectSameBytes, mutateBlocks, tempDir, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';

const MiB = 1024 * 1024;
const SIZE = 12 * MiB;
const BLOCK = 8;

let sshd: TestSshd;
let dir: string;
let cleanup: () => void;
let home: string;
let src: string;

beforeAll(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = tempDir('pdc-small-blocks-'));
  home = join(dir, 'home');
  mkdirSync(home);
  src = join(dir, 'source.bin');
  writeSeededFile(src, SIZE, 91);
});

afterAll(async () => {
  killAllClis();
  await sshd?.stop();
  cleanup?.();
});

describe(`-b ${BLOCK} on a ${SIZE / MiB} MiB file (${SIZE / BLOCK} blocks)`, () => {
  it('needs more than one hash request (the case this guards)', () => {
    expect(SIZE / BLOCK).toBeGreaterThan(MAX_HASH_BLOCKS);
    expect(hashRequestBlocks(BLOCK, 8)).toBeLessThanOrEqual(MAX_HASH_BLOCKS);
  });

  it.each(['local', 'ssh push'] as const)('%s: succeeds, sends only the changed blocks, target byte-identical', async (where) => {
    const dst = join(dir, `target-${where.replace(' ', '-')}.bin`);
    copyFileSync(src, dst);
    // changed blocks in the first and the last hash request
    mutateBlocks(dst, BLOCK, [3, 500_000, SIZE / BLOCK - 2], 5);
    const args = where === 'local' ? [src, dst] : ['-F', sshd.sshConfig, src, `${sshd.alias}:${dst}`];
    const r = await runCli(['--json', '-b', String(BLOCK), ...args], { home, timeoutMs: 170_000 });
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(dst, src);
    const summary = jsonOf(r);
    expect(summary.blocksTotal).toBe(SIZE / BLOCK);
    expect(summary.blocksChanged).toBe(3);
    expect(summary.bytesSent).toBe(3 * BLOCK);
  }, 180_000);
});
