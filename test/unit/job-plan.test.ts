/** The job's pure decisions: rsync's trailing-slash rule, and what happens to each entry of a directory. */
import { BATCH_BYTES, sentInBatch } from '../../src/job/batch.js';
import { MAX_BATCH_BYTES } from '../../src/protocol/ops.js';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type EntryPlan, baseName, dirName, landing, namesContents, planEntry, safeName, toDelete } from '../../src/job/plan.js';
import type { DirEntry } from '../../src/protocol/messages.js';

describe('the trailing-slash rule (landing)', () => {
  it.each<[string, boolean, string, string]>([
    ['src/', true, '/t', '/t'],
    ['src/.', true, '/t', '/t'],
    ['.', true, '/t', '/t'],
    ['/abs/src//', true, '/t', '/t'],
    ['src', true, '/t', '/t/src'],
    ['/abs/src', true, '/t', '/t/src'],
    ['a/b/src', true, 'host-rel', 'host-rel/src'],
    // A file lands under its name whether or not a slash follows (a file has no contents to name).
    ['file', false, '/t', '/t/file'],
    ['dir/file', false, '/t', '/t/file'],
  ])('%s (dir: %s) into %s -> %s', (source, isDir, target, want) => {
    expect(landing(source, isDir, target, posix.join)).toBe(want);
  });

  it.each<[string, boolean]>([
    ['a/', true],
    ['a/.', true],
    ['.', true],
    ['a', false],
    ['a/.b', false],
  ])('namesContents(%j) = %s', (p, want) => expect(namesContents(p)).toBe(want));

  it.each<[string, string, string]>([
    ['a/b', 'b', 'a'],
    ['a/b/', 'b', 'a'],
    ['b', 'b', '.'],
    ['/b', 'b', '/'],
    ['~/x', 'x', '~'],
  ])('baseName/dirName(%j)', (p, base, dir) => {
    expect(baseName(p)).toBe(base);
    expect(dirName(p)).toBe(dir);
  });
});

const e = (over: Partial<DirEntry>): DirEntry => ({ name: 'x', kind: 'file', size: 10, mtimeMs: 1000.5, mode: 0o644, uid: 0, gid: 0, ...over });

describe('planEntry: what one source entry becomes', () => {
  const quick = { quickCheck: true };
  const always = { quickCheck: false };
  it.each<[string, DirEntry, DirEntry | undefined, { quickCheck: boolean }, EntryPlan['do'] | [EntryPlan['do'], string]]>([
    ['a new file is synced', e({}), undefined, quick, 'sync'],
    ['same size and mtime, -t: up to date (quick check)', e({}), e({ mtimeMs: 1000.5 }), quick, 'uptodate'],
    ['same size and mtime without -t (or --checksum): compared', e({}), e({}), always, 'sync'],
    ['size differs: synced', e({}), e({ size: 11 }), quick, 'sync'],
    ['mtime differs by a second: synced', e({}), e({ mtimeMs: 2000.5 }), quick, 'sync'],
    ['a directory is walked', e({ kind: 'dir' }), undefined, quick, 'dir'],
    ['an existing directory is walked', e({ kind: 'dir' }), e({ kind: 'dir' }), quick, 'dir'],
    ['a new link is made', e({ kind: 'symlink', linkTarget: 'a' }), undefined, quick, 'symlink'],
    ['a link pointing elsewhere is replaced', e({ kind: 'symlink', linkTarget: 'a' }), e({ kind: 'symlink', linkTarget: 'b' }), quick, 'symlink'],
    ['the same link is up to date', e({ kind: 'symlink', linkTarget: 'a' }), e({ kind: 'symlink', linkTarget: 'a' }), always, 'uptodate'],
    ['a FIFO or device is skipped', e({ kind: 'other' }), undefined, quick, 'skip'],
    ['a link at a directory\'s name is never followed', e({ kind: 'dir' }), e({ kind: 'symlink', linkTarget: '/etc' }), quick, ['fail', 'TARGET_NOT_REGULAR']],
    ['a link at a file\'s name is not written through', e({}), e({ kind: 'symlink', linkTarget: '/etc/shadow' }), quick, ['fail', 'TARGET_NOT_REGULAR']],
    ['a directory at a file\'s name is left alone', e({}), e({ kind: 'dir' }), quick, ['fail', 'TARGET_NOT_REGULAR']],
    ['a file at a link\'s name is left alone', e({ kind: 'symlink', linkTarget: 'a' }), e({}), quick, ['fail', 'TARGET_NOT_REGULAR']],
    ['a `..` name from a hostile peer', e({ name: '..' }), undefined, quick, ['fail', 'TARGET_OUTSIDE_TREE']],
    ['a name with a slash from a hostile peer', e({ name: '../../etc/passwd' }), undefined, quick, ['fail', 'TARGET_OUTSIDE_TREE']],
    ['an empty name', e({ name: '' }), undefined, quick, ['fail', 'TARGET_OUTSIDE_TREE']],
  ])('%s', (_name, src, dst, o, want) => {
    const plan = planEntry(src, dst, o);
    const [what, code] = Array.isArray(want) ? want : [want, undefined];
    expect(plan.do).toBe(what);
    if (code) expect(plan).toMatchObject({ code });
  });

  it.each([
    ['ok', true],
    ['with space\nand newline', true],
    ['ünïcödé', true],
    ['.hidden', true],
    ['.', false],
    ['..', false],
    ['a/b', false],
    ['', false],
  ])('safeName(%j) = %s', (name, want) => expect(safeName(name)).toBe(want));
});

describe('toDelete: what --delete removes from a synced directory', () => {
  it.each<[string, string[], string[], string[]]>([
    ['nothing extra', ['a', 'b'], ['a', 'b'], []],
    ['an extra file and dir', ['a'], ['a', 'old', 'stale-dir'], ['old', 'stale-dir']],
    ['everything, when the source directory is empty', [], ['x', 'y'], ['x', 'y']],
    ['an entry the source has as another kind is not deleted (it is reported instead)', ['db'], ['db'], []],
    ['names that could leave the directory are never acted on', [], ['..', '.', 'a/b', ''], []],
  ])('%s', (_name, ours, theirs, want) => {
    expect(toDelete(new Set(ours), theirs.map((name) => e({ name }))).map((x) => x.name)).toEqual(want);
  });
});

describe('sentInBatch: which files travel whole in batches', () => {
  const o = { blockSize: 1 << 20, hashMethod: 'xxh64', dryRun: false, atomic: false, verify: false };
  it.each<[string, number, Partial<typeof o>, boolean]>([
    ['an empty file', 0, {}, true],
    ['a file of one block', 1 << 20, {}, true],
    ['a file one byte over a block', (1 << 20) + 1, {}, false],
    ['a small file in a dry run (it is compared, not sent)', 10, { dryRun: true }, false],
    ['a small file with --atomic (its temp file and rename)', 10, { atomic: true }, false],
    ['a small file with --verify (sha256 digests)', 10, { verify: true }, false],
    ['a one-block file bigger than a batch gathers (-b 64M)', BATCH_BYTES + 1, { blockSize: 64 << 20 }, false],
    ['a file of a batch exactly (-b 64M)', BATCH_BYTES, { blockSize: 64 << 20 }, true],
  ])('%s', (_what, size, over, want) => {
    expect(sentInBatch(size, { ...o, ...over })).toBe(want);
  });
  it('a batch gathers no more than one request may carry', () => {
    expect(BATCH_BYTES).toBeLessThanOrEqual(MAX_BATCH_BYTES);
  });
});
