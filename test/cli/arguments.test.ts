/**
 * How the command line is parsed, as users type it: the built CLI as a child
 * process, real files, local only. Every positional argument is either used or
 * refused; nothing is opened for writing when the arguments are wrong.
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { expectCleanError, jsonOf, runCli } from '../support/cli-child.js';
import { expectSameBytes, sha256File, tempDir, writeSeededFile } from '../support/files.js';

let dir: string;
let cleanup: () => void;
let home: string;

beforeAll(() => {
  ({ dir, cleanup } = tempDir('pdc-args-'));
  home = join(dir, 'home');
  mkdirSync(home);
});
afterAll(() => cleanup?.());

/** A file whose content and mtime a test can check afterwards. */
function untouchable(name: string, seed: number): { path: string; expectUntouched(): void } {
  const path = join(dir, name);
  writeSeededFile(path, 256 * 1024 + seed, seed);
  const sha = sha256File(path);
  const mtime = statSync(path).mtimeMs;
  return {
    path,
    expectUntouched() {
      expect(sha256File(path), `${name} content`).toBe(sha);
      expect(statSync(path).mtimeMs, `${name} mtime`).toBe(mtime);
    },
  };
}

describe('more than two positional arguments', () => {
  it('several sources and a remote directory: exit 2, USAGE, the second file is not overwritten', async () => {
    const customers = untouchable('customers.ibd', 1);
    const orders = untouchable('orders.ibd', 2);
    const payments = untouchable('payments.ibd', 3);
    const r = await runCli(['--json', customers.path, orders.path, payments.path, 'box.invalid:/dir/'], { home });
    expectCleanError(r, EXIT_CODES.usage, /several sources are not supported yet/);
    const j = jsonOf(r);
    expect(j.ok).toBe(false);
    expect(j.error.code).toBe('USAGE');
    expect(j.error.hint).toMatch(/one run per file/);
    for (const f of [customers, orders, payments]) f.expectUntouched();
  });

  it('three local paths, options after them: exit 2, nothing written', async () => {
    const a = untouchable('three-a', 4);
    const b = untouchable('three-b', 5);
    const c = untouchable('three-c', 6);
    const r = await runCli([a.path, b.path, c.path, '--dry-run'], { home });
    expectCleanError(r, EXIT_CODES.usage, /3 arguments/);
    for (const f of [a, b, c]) f.expectUntouched();
  });

  it('an extra argument after `--` counts too', async () => {
    const a = untouchable('dash-a', 7);
    const b = untouchable('dash-b', 8);
    const r = await runCli(['--json', a.path, '--', b.path, join(dir, 'dash-c')], { home });
    expectCleanError(r, EXIT_CODES.usage);
    expect(jsonOf(r).error.code).toBe('USAGE');
    b.expectUntouched();
  });

  it('SOURCE and TARGET after `--` are still used (a name may start with a dash there)', async () => {
    const src = untouchable('-dash-src', 9);
    const dst = join(dir, '-dash-dst');
    const r = await runCli(['--json', '--', '-dash-src', '-dash-dst'], { home, cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(jsonOf(r).ok).toBe(true);
    expectSameBytes(dst, src.path);
  });
});
