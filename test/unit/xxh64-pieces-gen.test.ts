/**
 * The committed src/hash/xxh64-pieces-wasm.ts is what src/hash/xxh64-pieces.wat compiles
 * to. Needs wat2wasm (wabt), which CI need not have: the module's behaviour is checked
 * without it by xxh64-pieces.test.ts (digests against xxhash-wasm).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const hasWat2wasm = spawnSync('wat2wasm', ['--version']).status === 0;

describe('generated wasm module', () => {
  it.skipIf(!hasWat2wasm)('matches the .wat (skipped without wat2wasm: apt-get install wabt)', () => {
    const r = spawnSync(process.execPath, ['scripts/gen-wasm.mjs', '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
