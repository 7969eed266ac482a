/**
 * Threat: the source's name flips between a regular file and a FIFO while runs start (anyone
 * who can write its directory can do this). Opening a FIFO to read waits for a writer, so a
 * FIFO that arrives between the source's stat and its open held the run forever. Rule: a file
 * to read is opened with O_NONBLOCK and checked to be a regular file once open; every run ends
 * with the copy (exit 0, the target byte-identical) or a clean error, never a hang.
 * Checked with a racer (a link at the source's name swapped between the two, atomically) over
 * the local transport and pulling through a real sshd (the remote agent opens the source).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { killAllClis, runCli } from '../support/cli-child.js';
import { tempDir, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';

/** Points SRC at FILE, then at FIFO, and so on, every millisecond, each time by renaming a fresh link over SRC. Args: SRC FILE FIFO. */
const LINK_FLIPPER = `
const fs = require('fs');
const [src, file, fifo] = process.argv.slice(1);
const pause = new Int32Array(new SharedArrayBuffer(4));
process.stdout.write('ready\\n');
for (;;) {
  for (const to of [file, fifo]) {
    try { fs.symlinkSync(to, src + '.next'); fs.renameSync(src + '.next', src); } catch {}
    Atomics.wait(pause, 0, 0, 1);
  }
}
`;

const RUNS = 24;
/** A run normally takes well under a second; this long means it hung. */
const HANG_MS = 20_000;

let sshd: TestSshd;
let dir: string;
let cleanup: () => void;
let home: string;
let racer: ChildProcess | undefined;

beforeAll(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = tempDir('pdc-source-swap-'));
  home = join(dir, 'home');
  mkdirSync(home);
});

afterEach(() => {
  racer?.kill('SIGKILL');
  racer = undefined;
  killAllClis();
});

afterAll(async () => {
  await sshd?.stop();
  cleanup?.();
});

async function startFlipper(src: string, file: string, fifo: string): Promise<void> {
  racer = spawn(process.execPath, ['-e', LINK_FLIPPER, src, file, fifo], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => racer!.stdout!.once('data', () => resolve()));
}

describe.each(['local', 'ssh pull'] as const)('a source flipping between a file and a FIFO (%s)', (mode) => {
  it(`${RUNS} runs: each copies or fails cleanly, none hangs`, async () => {
    const d = join(dir, mode.replace(' ', '-'));
    mkdirSync(d);
    const file = join(d, 'data.bin');
    const fifo = join(d, 'pipe');
    const src = join(d, 'source');
    writeSeededFile(file, 2 * 1024 * 1024 + 11, 17);
    execFileSync('mkfifo', [fifo]);
    await startFlipper(src, file, fifo);
    const outcomes: Record<string, number> = {};
    for (let i = 0; i < RUNS; i++) {
      const dst = join(d, `target-${i}.bin`);
      const args = mode === 'local' ? [src, dst] : ['-F', sshd.sshConfig, `${sshd.alias}:${src}`, dst];
      const r = await runCli(['--no-progress', ...args], { home, timeoutMs: HANG_MS });
      expect(r.timedOut, `run ${i} hung; stderr: ${r.stderr}`).toBe(false);
      if (r.code === 0) expect(readFileSync(dst).equals(readFileSync(file)), `run ${i}: target identical`).toBe(true);
      else {
        expect(r.code, `run ${i}: ${r.stderr}`).toBe(EXIT_CODES.source);
        expect(r.stderr).toMatch(/^pdiffcopy: error: (\S+: )?source .*(not a regular file|no longer a regular file|does not exist|changed)/m);
        expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      }
      outcomes[String(r.code)] = (outcomes[String(r.code)] ?? 0) + 1;
    }
    console.log(`source flipping (${mode}): exit codes over ${RUNS} runs: ${JSON.stringify(outcomes)}`);
  }, RUNS * HANG_MS + 30_000);
});
