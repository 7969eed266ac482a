/**
 * Many files in one run, through the built CLI: several sources, -r trees with
 * rsync's trailing-slash rule, metadata with -a, the quick check on a rerun, and a
 * failed file that does not stop the others. Local, and over a real sshd (push and
 * pull); every target checked byte for byte, and mode/mtime/owner where promised.
 */
import { chmodSync, chownSync, existsSync, realpathSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { jsonOf, runCli } from '../support/cli-child.js';
import { expectSameBytes, mutateBlocks, tempDir, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
let dir: string;
let cleanup: () => void;
let home: string;
let sshd: TestSshd;
let n = 0;

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('pdc-trees-'));
  chmodSync(dir, 0o755);
  home = join(dir, 'home');
  mkdirSync(home);
  sshd = await startSshd();
}, 60_000);
afterAll(async () => {
  await sshd?.stop();
  cleanup?.();
});

const OLD = new Date('2021-03-04T05:06:07.123Z');

/** A tree with what users' trees hold: nesting, empty dirs, links, odd names, a FIFO, modes, old mtimes, another owner. */
function makeTree(root: string): void {
  mkdirSync(join(root, 'db', 'shop'), { recursive: true });
  mkdirSync(join(root, 'empty', 'deeper-empty'), { recursive: true });
  mkdirSync(join(root, 'imgs ünï'), { recursive: true });
  writeSeededFile(join(root, 'db', 'shop', 'orders.ibd'), 300 * 1024 + 17, 1);
  writeSeededFile(join(root, 'db', 'shop', 'customers.ibd'), 64 * 1024, 2);
  writeSeededFile(join(root, 'imgs ünï', 'name with spaces.png'), 5000, 3);
  writeSeededFile(join(root, 'imgs ünï', 'new\nline'), 10, 4);
  writeFileSync(join(root, 'zero-length'), '');
  writeSeededFile(join(root, 'top.bin'), 70 * 1024, 5);
  symlinkSync('db/shop/orders.ibd', join(root, 'link-to-orders'));
  symlinkSync('/nonexistent/dangling', join(root, 'dangling'));
  execFileSync('mkfifo', [join(root, 'a-fifo')]);
  chmodSync(join(root, 'db', 'shop', 'customers.ibd'), 0o640);
  chmodSync(join(root, 'top.bin'), 0o751);
  chmodSync(join(root, 'imgs ünï'), 0o750);
  if (isRoot) chownSync(join(root, 'db', 'shop', 'customers.ibd'), NOBODY, NOBODY);
  for (const p of ['db/shop/orders.ibd', 'db/shop/customers.ibd', 'top.bin', 'imgs ünï/new\nline', 'db/shop', 'db', 'empty/deeper-empty', 'imgs ünï']) {
    utimesSync(join(root, p), OLD, OLD);
  }
}

/** The target tree is the source tree: kinds, bytes, link targets; with `meta` also mode, mtime and owner. FIFOs are not copied. */
function expectSameTree(src: string, dst: string, meta: boolean): void {
  for (const name of readdirSync(src)) {
    const s = lstatSync(join(src, name));
    const at = join(dst, name);
    if (s.isFIFO()) {
      expect(existsSync(at), `${at} (a FIFO is skipped)`).toBe(false);
      continue;
    }
    const d = lstatSync(at);
    if (s.isSymbolicLink()) {
      expect(d.isSymbolicLink(), `${at} is a link`).toBe(true);
      expect(readlinkSync(at)).toBe(readlinkSync(join(src, name)));
      continue;
    }
    if (s.isDirectory()) {
      expect(d.isDirectory(), `${at} is a directory`).toBe(true);
      expectSameTree(join(src, name), at, meta);
    } else {
      expect(d.isFile(), `${at} is a file`).toBe(true);
      expectSameBytes(at, join(src, name));
    }
    if (meta) {
      expect(d.mode & 0o7777, `${at} mode`).toBe(s.mode & 0o7777);
      expect(Math.abs(d.mtimeMs - s.mtimeMs), `${at} mtime`).toBeLessThan(1);
      if (isRoot) expect([d.uid, d.gid], `${at} owner`).toEqual([s.uid, s.gid]);
    }
  }
}

function fresh(name: string): string {
  const p = join(dir, `${name}-${++n}`);
  mkdirSync(p);
  return p;
}

type Mode = 'local' | 'push' | 'pull';
const remote = (mode: Mode, side: 'source' | 'target', path: string) =>
  (mode === 'push' && side === 'target') || (mode === 'pull' && side === 'source') ? `${sshd.alias}:${path}` : path;
const cli = (args: string[], mode: Mode) => runCli(['-F', sshd.sshConfig, '-b', '16K', ...args], { home, timeoutMs: 120_000 });

describe.each<Mode>(['local', 'push', 'pull'])('%s', (mode) => {
  it('-a DIR/ copies the contents: every file, dir, link; mode, mtime, owner kept; a rerun sends only what changed', async () => {
    const src = fresh('src');
    makeTree(src);
    const dst = fresh('dst');
    const r = await cli(['-a', '--json', remote(mode, 'source', `${src}/`), remote(mode, 'target', dst)], mode);
    expect(r.code, r.stderr).toBe(0);
    const j = jsonOf(r);
    expect(j.ok).toBe(true);
    expect(j.totals).toMatchObject({ files: 6, filesSynced: 6, filesFailed: 0, symlinksCreated: 2, skipped: 1 });
    expectSameTree(src, dst, true);

    // 0% change: the quick check skips every file, nothing is sent.
    const again = jsonOf(await cli(['-a', '--json', remote(mode, 'source', `${src}/`), remote(mode, 'target', dst)], mode));
    expect(again.totals).toMatchObject({ filesSynced: 0, filesUpToDate: 6, bytesSent: 0, dirsCreated: 0, symlinksCreated: 0 });

    // One block changed in one file, one file added: only those two go through the engine.
    mutateBlocks(join(src, 'db', 'shop', 'orders.ibd'), 16 * 1024, [3], 99);
    writeSeededFile(join(src, 'empty', 'deeper-empty', 'new.bin'), 1000, 7);
    const third = await cli(['-a', '--json', remote(mode, 'source', `${src}/`), remote(mode, 'target', dst)], mode);
    expect(third.code, third.stderr).toBe(0);
    const t = jsonOf(third);
    expect(t.totals).toMatchObject({ filesSynced: 2, filesUpToDate: 5, bytesSent: 16 * 1024 + 1000 });
    expect(t.files.map((f: { target: string }) => f.target.replace(/^[^:]*:/, ''))).toEqual([
      join(dst, 'db', 'shop', 'orders.ibd'),
      join(dst, 'empty', 'deeper-empty', 'new.bin'),
    ]);
    expectSameTree(src, dst, true);
  }, 120_000);

  it('-r DIR (no slash) copies the directory itself into TARGET; without -t every file is compared', async () => {
    const src = fresh('tree');
    makeTree(src);
    const dst = fresh('into');
    const r = await cli(['-r', remote(mode, 'source', src), remote(mode, 'target', `${dst}/`)], mode);
    expect(r.code, r.stderr).toBe(0);
    expectSameTree(src, join(dst, src.split('/').pop()!), false);
    expect(readdirSync(dst)).toEqual([src.split('/').pop()]);
  }, 120_000);

  it('several sources into a directory: each file lands under its name, --json lists each', async () => {
    const a = join(fresh('several'), 'a.ibd');
    const b = join(fresh('several'), 'b.ibd');
    writeSeededFile(a, 40_000, 11);
    writeSeededFile(b, 50_000, 12);
    const dst = fresh('several-dst');
    const r = await cli(['--json', remote(mode, 'source', a), remote(mode, 'source', b), remote(mode, 'target', dst)], mode);
    expect(r.code, r.stderr).toBe(0);
    const j = jsonOf(r);
    expect(j.files.map((f: { ok: boolean }) => f.ok)).toEqual([true, true]);
    expect(j.totals).toMatchObject({ files: 2, filesSynced: 2, filesFailed: 0 });
    expectSameBytes(join(dst, 'a.ibd'), a);
    expectSameBytes(join(dst, 'b.ibd'), b);
  }, 120_000);

  it('a failed entry does not stop the others: reported, the rest synced, exit 23', async () => {
    const src = fresh('partial');
    makeTree(src);
    const dst = fresh('partial-dst');
    // Where the source has a directory the target has a link to elsewhere: never followed, never written through.
    const outside = fresh('outside');
    symlinkSync(outside, join(dst, 'db'));
    const r = await cli(['-r', '--json', remote(mode, 'source', `${src}/`), remote(mode, 'target', dst)], mode);
    expect(r.code, r.stderr).toBe(EXIT_CODES.partial);
    const j = jsonOf(r);
    expect(j.ok).toBe(false);
    expect(j.totals.filesFailed).toBe(1);
    const failed = j.files.filter((f: { ok: boolean }) => !f.ok);
    expect(failed).toHaveLength(1);
    expect(failed[0].error.code).toBe('TARGET_NOT_REGULAR');
    expect(failed[0].target).toMatch(/\/db$/);
    expect(readdirSync(outside)).toEqual([]);
    expectSameBytes(join(dst, 'top.bin'), join(src, 'top.bin'));
    expectSameBytes(join(dst, 'imgs ünï', 'new\nline'), join(src, 'imgs ünï', 'new\nline'));
    // Without --json: each failure as an error line, the totals last.
    const plain = await cli(['-r', remote(mode, 'source', `${src}/`), remote(mode, 'target', dst)], mode);
    expect(plain.code).toBe(EXIT_CODES.partial);
    expect(plain.stderr).toMatch(/error: .*db.* is a symlink where the source has a directory/);
    expect(plain.stderr).toMatch(/skipped .*a-fifo/);
    expect(plain.stderr.trim().split('\n').pop()).toMatch(/1 FAILED/);
  }, 120_000);
});

describe.each<Mode>(['local', 'push'])('--delete, %s', (mode) => {
  it('removes what the source no longer has, only inside the synced tree, never through a link; -n only lists it', async () => {
    const src = fresh('del-src');
    makeTree(src);
    const dst = fresh('del-dst');
    expect((await cli(['-a', remote(mode, 'source', `${src}/`), remote(mode, 'target', dst)], mode)).code).toBe(0);
    const outside = fresh('del-outside');
    writeFileSync(join(outside, 'keep'), 'keep');
    writeFileSync(join(dst, 'stale.txt'), 'old');
    mkdirSync(join(dst, 'db', 'gone', 'deeper'), { recursive: true });
    writeFileSync(join(dst, 'db', 'gone', 'deeper', 'f'), 'x');
    symlinkSync(outside, join(dst, 'db', 'gone', 'link-out'));
    const beside = fresh('del-beside');

    const dry = await cli(['-a', '-n', '--delete', remote(mode, 'source', `${src}/`), remote(mode, 'target', dst)], mode);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would delete ${remote(mode, 'target', join(dst, 'stale.txt'))}`);
    expect(dry.stdout).toContain(`would delete ${remote(mode, 'target', join(dst, 'db', 'gone'))}/`);
    expect(existsSync(join(dst, 'stale.txt'))).toBe(true);

    const r = await cli(['-a', '--delete', '--json', remote(mode, 'source', `${src}/`), remote(mode, 'target', dst)], mode);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonOf(r).totals).toMatchObject({ deleted: 2, filesSynced: 0, filesFailed: 0 });
    expect(existsSync(join(dst, 'stale.txt'))).toBe(false);
    expect(existsSync(join(dst, 'db', 'gone'))).toBe(false);
    expect(readFileSync(join(outside, 'keep'), 'utf8')).toBe('keep');
    expect(existsSync(beside)).toBe(true);
    expectSameTree(src, dst, true);
  }, 120_000);
});

describe('several sources, bad target', () => {
  it('TARGET not an existing directory: exit 2, nothing is overwritten or created', async () => {
    const d = fresh('bad');
    const a = join(d, 'a');
    const b = join(d, 'b');
    writeSeededFile(a, 1000, 1);
    writeSeededFile(b, 2000, 2);
    const before = readFileSync(b);
    const r = await runCli(['--json', a, b, join(d, 'missing-dir')], { home });
    expect(r.code, r.stderr).toBe(EXIT_CODES.usage);
    expect(jsonOf(r).error.code).toBe('USAGE');
    expect(readFileSync(b).equals(before)).toBe(true);
    expect(existsSync(join(d, 'missing-dir'))).toBe(false);
    const r2 = await runCli([a, b], { home });
    expect(r2.code).toBe(0); // two arguments are still SOURCE TARGET: b is replaced by a
    expectSameBytes(b, a);
  });

  it('a directory among the sources without -r fails alone, the files are copied', async () => {
    const d = fresh('nor');
    mkdirSync(join(d, 'sub'));
    writeSeededFile(join(d, 'f'), 3000, 3);
    const dst = fresh('nor-dst');
    const r = await runCli(['--json', join(d, 'sub'), join(d, 'f'), dst], { home });
    expect(r.code, r.stderr).toBe(EXIT_CODES.partial);
    const j = jsonOf(r);
    expect(j.files.map((f: { ok: boolean; error?: { code: string; hint: string } }) => f.ok || f.error!.code)).toEqual(['SOURCE_NOT_REGULAR', true]);
    expectSameBytes(join(dst, 'f'), join(d, 'f'));
  });
});

describe.runIf(isRoot)('an unreadable file (the CLI as uid 65534)', () => {
  it('is reported; every other file is synced; exit 23', async () => {
    const src = fresh('unreadable');
    makeTree(src);
    execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, src]);
    chmodSync(join(src, 'top.bin'), 0o000);
    const dst = fresh('unreadable-dst');
    chownSync(dst, NOBODY, NOBODY);
    const nobodyHome = fresh('nobody-home');
    chownSync(nobodyHome, NOBODY, NOBODY);
    const r = await runCli(['-r', '--json', `${src}/`, dst], { home: nobodyHome, uid: NOBODY, gid: NOBODY, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(EXIT_CODES.partial);
    const j = jsonOf(r);
    const failed = j.files.filter((f: { ok: boolean }) => !f.ok);
    expect(failed.map((f: { source: string; error: { code: string } }) => [f.source.split('/').pop(), f.error.code])).toEqual([['top.bin', 'SOURCE_PERMISSION']]);
    expect(j.totals).toMatchObject({ files: 6, filesSynced: 5, filesFailed: 1 });
    expect(existsSync(join(dst, 'top.bin'))).toBe(false);
    expectSameBytes(join(dst, 'db', 'shop', 'orders.ibd'), join(src, 'db', 'shop', 'orders.ibd'));
    expectSameBytes(join(dst, 'imgs ünï', 'name with spaces.png'), join(src, 'imgs ünï', 'name with spaces.png'));
  }, 60_000);
});

describe('dry run', () => {
  it('-n -r lists every file and directory it would create or update, and writes nothing', async () => {
    const src = fresh('dry');
    makeTree(src);
    const dst = fresh('dry-dst');
    writeSeededFile(join(dst, 'top.bin'), 70 * 1024, 6);
    const r = await runCli(['-n', '-r', `${src}/`, dst], { home });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`would update ${join(dst, 'top.bin')}`);
    expect(r.stdout).toContain(`would create ${join(dst, 'db', 'shop', 'orders.ibd')}`);
    expect(r.stdout).toContain(`would create ${join(dst, 'empty', 'deeper-empty')}/`);
    expect(r.stdout).toMatch(/dry run: .* already match/);
    expect(readdirSync(dst)).toEqual(['top.bin']);
  });
});

describe('-B with --json', () => {
  it('prints one JSON object with a row per round, and the target ends as the source', async () => {
    const d = fresh('bench');
    writeSeededFile(join(d, 'src'), 256 * 1024, 21);
    const r = await runCli(['-B', '2', '-y', '--json', '-b', '16K', join(d, 'src'), join(d, 'dst')], { home, timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const j = jsonOf(r);
    expect(j.ok).toBe(true);
    expect(j.benchmark.map((row: { delta: number }) => row.delta)).toEqual([50, 100]);
    expect(j.benchmark[1].pdcSent).toBe(256 * 1024);
    expectSameBytes(join(d, 'dst'), join(d, 'src'));
  }, 120_000);
});

describe('a source that is a link to a directory', () => {
  it('-r LINK/ copies the contents of the directory it points to; -r LINK recreates the link', async () => {
    const d = fresh('linked');
    const real = join(d, 'real');
    mkdirSync(join(real, 'sub'), { recursive: true });
    writeSeededFile(join(real, 'sub', 'f'), 20_000, 31);
    symlinkSync('real', join(d, 'datadir'));
    const contents = fresh('linked-contents');
    const r = await runCli(['-r', `${join(d, 'datadir')}/`, contents], { home });
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(join(contents, 'sub', 'f'), join(real, 'sub', 'f'));
    const itself = fresh('linked-itself');
    const r2 = await runCli(['-r', join(d, 'datadir'), itself], { home });
    expect(r2.code, r2.stderr).toBe(0);
    expect(readlinkSync(join(itself, 'datadir'))).toBe('real');
  });
});

const node12 = join(process.cwd(), '.cache/node12/bin/node');
describe.runIf(existsSync(node12)).each<Mode>(['push', 'pull'])('a Node 12 agent, %s', (mode) => {
  it('lists, makes directories and links, and sets metadata with Node 12 built-ins only', async () => {
    const src = fresh('n12-src');
    makeTree(src);
    const dst = fresh('n12-dst');
    const r = await cli(['-a', '--delete', '--remote-node', realpathSync(node12), remote(mode, 'source', `${src}/`), remote(mode, 'target', dst)], mode);
    expect(r.code, r.stderr).toBe(0);
    expectSameTree(src, dst, true);
  }, 120_000);
});

describe('a target inside the source', () => {
  it('-r SRC/ SRC/copy ends: the copy is not copied into itself again', async () => {
    const src = fresh('self');
    writeSeededFile(join(src, 'f'), 5000, 41);
    mkdirSync(join(src, 'copy'));
    const r = await runCli(['-r', `${src}/`, join(src, 'copy')], { home, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.timedOut).toBe(false);
    expectSameBytes(join(src, 'copy', 'f'), join(src, 'f'));
    expect(readdirSync(join(src, 'copy', 'copy'))).toEqual([]);
  });
});
