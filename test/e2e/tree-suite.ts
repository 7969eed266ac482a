/**
 * The conformance suite for trees of many small files, run over every way of reaching
 * a host (local agent, SSH push, SSH pull): small files travel in batches (a few
 * requests for hundreds of files, no per-file open), big ones through the engine, and
 * every file ends byte for byte with its mode and mtime; a file that fails inside a
 * batch fails alone.
 */
import { DEFAULT_REFINE_LEVELS } from '../../src/engine/refine-plan.js';
import { chmodSync, mkdirSync, statSync, utimesSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncSummary } from '../../src/engine/events.js';
import type { FileHost } from '../../src/hosts/file-host.js';
import type { FileResult, RunEvent } from '../../src/job/events.js';
import { type JobOptions, runJob } from '../../src/job/job.js';
import { MAX_BATCH_FILES } from '../../src/protocol/ops.js';
import { expectSameBytes, tempDir, writeSeededFile } from '../support/files.js';
import type { HostPair } from './sync-suite.js';

/** `host` with every call counted by method name (the calls still run on `host`). */
function counted(host: FileHost, calls: Map<string, number>): FileHost {
  return new Proxy(host, {
    get(t, k) {
      const v = Reflect.get(t, k, t) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls.set(String(k), (calls.get(String(k)) ?? 0) + 1);
        return (v as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
}

const OPTIONS: JobOptions = {
  blockSize: 64 * 1024,
  hashMethod: 'xxh64',
  wholeFile: false,
  dryRun: false,
  verify: false,
  atomic: false,
  forceDevice: false,
  concurrency: 4,
  recursive: true,
  meta: { perms: true, times: true, owner: false, group: false },
  checksum: false,
  sparse: false,
  refineLevels: [...DEFAULT_REFINE_LEVELS],
};

const FILES = MAX_BATCH_FILES + 50;
const OLD = new Date('2022-02-03T04:05:06.789Z');
const NEW = new Date('2023-04-05T06:07:08.009Z');

export function defineTreeSuite(name: string, open: () => Promise<HostPair>): void {
  describe(name, () => {
    let dir: string;
    let cleanup: () => void;
    beforeAll(() => ({ dir, cleanup } = tempDir('pdc-tree-suite-')));
    afterAll(() => cleanup?.());

    async function job(src: string, dst: string, o: Partial<JobOptions> = {}) {
      const pair = await open();
      const calls = { source: new Map<string, number>(), target: new Map<string, number>() };
      const events: RunEvent[] = [];
      try {
        const r = await runJob(
          { sources: [`${src}/`], target: dst, options: { ...OPTIONS, ...o } },
          { source: counted(pair.source, calls.source), target: counted(pair.target, calls.target) },
          (e) => events.push(e),
        );
        const files: FileResult[] = [];
        for (const e of events) {
          if (e.type === 'done') files.push({ ok: true, ...e.summary });
          else if (e.type === 'file-failed') files.push({ ok: false, source: e.source, target: e.target, error: e.error });
        }
        return { totals: r.totals, calls, files };
      } finally {
        await pair.close();
      }
    }

    /** FILES small files over three directories, and one file of several blocks. */
    function makeTree(root: string): string[] {
      const names: string[] = [];
      for (let i = 0; i < FILES; i++) {
        const rel = join(`d${i % 3}`, `f ${i}.dat`);
        mkdirSync(join(root, `d${i % 3}`), { recursive: true });
        writeSeededFile(join(root, rel), 1 + ((i * 977) % 60_000), i);
        chmodSync(join(root, rel), i % 2 ? 0o640 : 0o604);
        utimesSync(join(root, rel), OLD, OLD);
        names.push(rel);
      }
      writeSeededFile(join(root, 'big.ibd'), 5 * 64 * 1024 + 3, 9999);
      utimesSync(join(root, 'big.ibd'), OLD, OLD);
      return [...names, 'big.ibd'];
    }

    function expectSame(src: string, dst: string, names: string[]): void {
      for (const n of names) {
        expectSameBytes(join(dst, n), join(src, n));
        const s = statSync(join(src, n));
        const d = statSync(join(dst, n));
        expect([n, d.mode & 0o7777, d.mtimeMs]).toEqual([n, s.mode & 0o7777, s.mtimeMs]);
      }
    }

    it('hundreds of small files in a few requests, no file opened alone; each file byte for byte with mode and mtime; a rerun sends nothing', async () => {
      const src = join(dir, 'src1');
      const dst = join(dir, 'dst1');
      const names = makeTree(src);
      const r = await job(src, dst);
      expectSame(src, dst, names);
      expect(r.totals).toMatchObject({ files: FILES + 1, filesSynced: FILES + 1, filesFailed: 0 });
      // Only the big file goes through the one-file path; the small ones in a handful of batches.
      expect(r.calls.target.get('open')).toBe(1);
      expect(r.calls.target.get('writeFiles')).toBeGreaterThanOrEqual(Math.ceil(FILES / MAX_BATCH_FILES));
      expect(r.calls.target.get('writeFiles')).toBeLessThanOrEqual(10);
      expect(r.calls.target.get('setmeta') ?? 0).toBeLessThanOrEqual(5); // the directories (and the big file)
      expect(r.files.filter((f) => f.ok)).toHaveLength(FILES + 1);
      const one = r.files.find((f) => f.ok && f.target.endsWith('f 7.dat')) as SyncSummary & { ok: true };
      expect(one).toMatchObject({ bytesTotal: statSync(join(src, 'd1', 'f 7.dat')).size, verified: 'blocks', targetCreated: true });

      const again = await job(src, dst);
      expect(again.totals).toMatchObject({ filesSynced: 0, filesUpToDate: FILES + 1, bytesSent: 0 });
      expect(again.calls.target.get('writeFiles') ?? 0).toBe(0);
    }, 120_000);

    it.skipIf(process.getuid?.() !== 0)('changed small files are rewritten in place; a file the target cannot write fails alone (exit 23 material), the others are synced', async () => {
      const src = join(dir, 'src2');
      const dst = join(dir, 'dst2');
      const names = makeTree(src);
      await job(src, dst);
      for (const i of [3, 100, 200]) {
        writeSeededFile(join(src, names[i]!), 3000 + i, 50_000 + i);
        utimesSync(join(src, names[i]!), NEW, NEW); // whole milliseconds: what -t carries over
      }
      const stuck = join(dst, names[100]!);
      execFileSync('chattr', ['+i', stuck]);
      try {
        const r = await job(src, dst);
        expect(r.totals).toMatchObject({ filesSynced: 2, filesFailed: 1 });
        const failed = r.files.filter((f) => !f.ok);
        expect(failed.map((f) => [f.target.endsWith(names[100]!), (f as { error: { code: string } }).error.code])).toEqual([[true, 'TARGET_PERMISSION']]);
      } finally {
        execFileSync('chattr', ['-i', stuck]);
      }
      expectSame(src, dst, names.filter((n) => n !== names[100]));
      await job(src, dst);
      expectSame(src, dst, names);
    }, 120_000);
  });
}
