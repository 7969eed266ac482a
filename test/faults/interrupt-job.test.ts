/**
 * SIGINT in the middle of a tree: the job stops at once (exit 130, one clean error
 * line), later files are not started, and a rerun finishes the tree.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { killAllClis, runCli, signal, spawnCli } from '../support/cli-child.js';
import { expectSameBytes, tempDir, writeSeededFile } from '../support/files.js';
import { waitForProgress } from './fault-helpers.js';

const MiB = 1024 * 1024;
let dir: string;
let cleanup: () => void;
let home: string;

beforeAll(() => {
  ({ dir, cleanup } = tempDir('pdc-faults-job-'));
  home = join(dir, 'home');
  mkdirSync(home);
});
afterEach(() => killAllClis());
afterAll(() => cleanup?.());

describe('SIGINT during a tree', () => {
  it('exits 130 without starting the next file; a rerun completes the tree', async () => {
    const src = join(dir, 'src');
    mkdirSync(src);
    writeSeededFile(join(src, 'a-small'), 10_000, 1);
    writeSeededFile(join(src, 'b-big'), 256 * MiB, 2);
    writeSeededFile(join(src, 'c-after'), 10_000, 3);
    const dst = join(dir, 'dst');
    mkdirSync(dst);
    const run = spawnCli(['-r', '-c', '1', `${src}/`, dst], { home, timeoutMs: 120_000 });
    await waitForProgress(join(dst, 'b-big'), 8 * MiB, 60_000, run);
    signal(run.pid, 'SIGINT');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(EXIT_CODES.interrupted);
    // The finished first file's summary line, then one error line: no stack, no other failure.
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('pdiffcopy: error: '));
    expect(errors, r.stderr).toHaveLength(1);
    expect(errors[0]).toMatch(/interrupted: the target is partly updated/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stderr).not.toMatch(/FAILED/);
    expect(existsSync(join(dst, 'c-after')), 'the file after the interrupted one is not started').toBe(false);
    expectSameBytes(join(dst, 'a-small'), join(src, 'a-small'));

    const again = await runCli(['-r', `${src}/`, dst], { home, timeoutMs: 120_000 });
    expect(again.code, again.stderr).toBe(0);
    for (const f of ['a-small', 'b-big', 'c-after']) expectSameBytes(join(dst, f), join(src, f));
  }, 180_000);
});
