/**
 * The tree ops (mkdir, symlink, setmeta) run as root in directories others can
 * write: none may act outside the tree it is given, nor through a symlink planted
 * where a directory or file of ours is expected. Through the agent's dispatcher,
 * as a client sends them.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, readlinkSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDispatcher } from '../../agent/dispatch.js';
import { PdcError } from '../../src/errors/pdc-error.js';
import { PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import { tempDir } from '../support/files.js';

let dir: string;
let cleanup: () => void;
let tree: string;
let outside: string;
beforeAll(() => {
  ({ dir, cleanup } = tempDir('pdc-tree-ops-'));
  tree = join(dir, 'tree');
  outside = join(dir, 'outside');
  mkdirSync(tree);
  mkdirSync(outside);
  writeFileSync(join(outside, 'precious'), 'keep');
  chmodSync(join(outside, 'precious'), 0o600);
  symlinkSync(outside, join(tree, 'planted-dir'));
  symlinkSync(join(outside, 'precious'), join(tree, 'planted-file'));
});
afterAll(() => cleanup?.());

async function agent() {
  const call = createDispatcher();
  await call('hello', { protocol: PROTOCOL_VERSION, client: 'test' }, undefined);
  return (op: string, args: unknown) => Promise.resolve(call(op, args, undefined));
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PdcError);
    return (e as PdcError).code;
  }
  throw new Error('expected a failure');
}

const precious = () => {
  expect(statSync(join(outside, 'precious')).mode & 0o7777).toBe(0o600);
  expect(lstatSync(join(outside, 'precious')).uid).toBe(process.getuid!());
};

describe('nothing outside the tree', () => {
  it.each<[string, string, unknown]>([
    ['mkdir with ..', 'mkdir', { path: 'x/../../outside/made' }],
    ['mkdir of an absolute path elsewhere', 'mkdir', { abs: true, path: 'made-abs' }],
    ['symlink with ..', 'symlink', { path: '../outside/link', linkTarget: '/etc/passwd' }],
    ['setmeta with ..', 'setmeta', { path: '../outside/precious', mode: 0o777 }],
    ['remove with ..', 'remove', { path: '../outside/precious' }],
    ['remove of an absolute path elsewhere', 'remove', { abs: true, path: 'precious' }],
  ])('%s -> TARGET_OUTSIDE_TREE, nothing made or changed', async (_name, op, a) => {
    const call = await agent();
    const { abs, path, ...rest } = a as { abs?: boolean; path: string };
    const full = abs ? join(outside, path) : `${tree}/${path}`;
    expect(await codeOf(call(op, { root: tree, path: full, ...rest }))).toBe('TARGET_OUTSIDE_TREE');
    expect(existsSync(join(outside, 'made'))).toBe(false);
    expect(existsSync(join(outside, 'made-abs'))).toBe(false);
    expect(existsSync(join(outside, 'link'))).toBe(false);
    precious();
  });
});

describe('a symlink planted inside the tree is never followed', () => {
  it('mkdir below a symlinked directory is refused', async () => {
    const call = await agent();
    expect(await codeOf(call('mkdir', { root: tree, path: join(tree, 'planted-dir', 'sub') }))).toBe('TARGET_NOT_REGULAR');
    expect(existsSync(join(outside, 'sub'))).toBe(false);
  });

  it('a symlink below a symlinked directory is refused', async () => {
    const call = await agent();
    expect(await codeOf(call('symlink', { root: tree, path: join(tree, 'planted-dir', 'l'), linkTarget: 'x' }))).toBe('TARGET_NOT_REGULAR');
    expect(existsSync(join(outside, 'l'))).toBe(false);
  });

  it('setmeta on a planted link, or below a planted directory, changes nothing', async () => {
    const call = await agent();
    const own = { uid: 65534, gid: 65534, mode: 0o4777, mtimeMs: 0 };
    expect(await codeOf(call('setmeta', { root: tree, path: join(tree, 'planted-file'), ...own }))).toBe('TARGET_NOT_REGULAR');
    expect(await codeOf(call('setmeta', { root: tree, path: join(tree, 'planted-dir', 'precious'), ...own }))).toBe('TARGET_NOT_REGULAR');
    precious();
  });

  it('symlink does not replace a file or directory, only a link', async () => {
    const call = await agent();
    writeFileSync(join(tree, 'a-file'), 'data');
    expect(await codeOf(call('symlink', { root: tree, path: join(tree, 'a-file'), linkTarget: 'x' }))).toBe('TARGET_NOT_REGULAR');
    expect(lstatSync(join(tree, 'a-file')).isFile()).toBe(true);
    symlinkSync('old', join(tree, 'a-link'));
    expect(await call('symlink', { root: tree, path: join(tree, 'a-link'), linkTarget: 'new' })).toEqual({ created: true });
    expect(readlinkSync(join(tree, 'a-link'))).toBe('new');
    expect(await call('symlink', { root: tree, path: join(tree, 'a-link'), linkTarget: 'new' })).toEqual({ created: false });
  });
});

describe('remove (--delete)', () => {
  it('below a planted directory link: refused; the tree root itself: refused', async () => {
    const call = await agent();
    expect(await codeOf(call('remove', { root: tree, path: join(tree, 'planted-dir', 'precious') }))).toBe('TARGET_NOT_REGULAR');
    expect(await codeOf(call('remove', { root: tree, path: tree }))).toBe('TARGET_OUTSIDE_TREE');
    precious();
    expect(existsSync(tree)).toBe(true);
  });

  it('a directory holding links to the outside: the links go, what they point to stays', async () => {
    const call = await agent();
    const d = join(tree, 'doomed');
    mkdirSync(join(d, 'sub'), { recursive: true });
    writeFileSync(join(d, 'sub', 'f'), 'x');
    symlinkSync(outside, join(d, 'sub', 'dir-link'));
    symlinkSync(join(outside, 'precious'), join(d, 'file-link'));
    expect(await call('remove', { root: tree, path: d })).toEqual({ removed: 5 });
    expect(existsSync(d)).toBe(false);
    precious();
    expect(existsSync(join(outside, 'precious'))).toBe(true);
    // The planted link itself, named directly, is removed as a link.
    symlinkSync(outside, join(tree, 'planted-again'));
    expect(await call('remove', { root: tree, path: join(tree, 'planted-again') })).toEqual({ removed: 1 });
    expect(existsSync(join(outside, 'precious'))).toBe(true);
  });
});

describe('inside the tree', () => {
  it('mkdir makes the missing directories; setmeta sets owner, mode and mtime through a descriptor', async () => {
    const call = await agent();
    expect(await call('mkdir', { root: tree, path: join(tree, 'a', 'b', 'c'), mode: 0o755 })).toEqual({ created: true });
    expect(statSync(join(tree, 'a', 'b', 'c')).isDirectory()).toBe(true);
    expect(await call('mkdir', { root: tree, path: join(tree, 'a', 'b', 'c') })).toEqual({ created: false });
    const f = join(tree, 'a', 'f');
    writeFileSync(f, 'x');
    utimesSync(f, new Date(), new Date());
    await call('setmeta', { root: tree, path: f, mode: 0o2750, mtimeMs: 1_600_000_000_123, ...(process.getuid!() === 0 ? { uid: 65534, gid: 65534 } : {}) });
    const st = statSync(f);
    expect(st.mode & 0o7777).toBe(0o2750);
    expect(Math.abs(st.mtimeMs - 1_600_000_000_123)).toBeLessThan(0.01);
    if (process.getuid!() === 0) expect([st.uid, st.gid]).toEqual([65534, 65534]);
  });

  it('list pages through a directory in name order, lstat-ing links', async () => {
    const call = await agent();
    const d = join(dir, 'many');
    mkdirSync(d);
    const names = Array.from({ length: 25 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    for (const n of names) writeFileSync(join(d, n), n);
    symlinkSync('f00', join(d, 'zlink'));
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = (await call('list', { path: d, role: 'source', max: 10, ...(after ? { after } : {}) })) as { entries: Array<{ name: string; kind: string; linkTarget?: string }>; more: boolean };
      seen.push(...page.entries.map((e) => e.name));
      if (page.entries.some((e) => e.name === 'zlink')) expect(page.entries.find((e) => e.name === 'zlink')).toMatchObject({ kind: 'symlink', linkTarget: 'f00' });
      if (!page.more) break;
      after = page.entries[page.entries.length - 1]!.name;
    }
    expect(seen).toEqual([...names, 'zlink']);
  });
});
