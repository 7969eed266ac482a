/**
 * `~` expansion and `..` resolution on the host that serves a file (the agent's
 * side), table-driven against real directories and this host's password database.
 */
import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveDotDot } from '../../src/fileops/dotdot.js';
import { expandHome, unknownUserError } from '../../src/fileops/home.js';
import { tempDir } from '../support/files.js';

const { dir, cleanup } = tempDir('pdc-paths-');
afterAll(cleanup);

describe('expandHome', () => {
  const me = userInfo();
  const cases: Array<[string, string | undefined]> = [
    ['/abs/~/x', '/abs/~/x'],
    ['rel/x', 'rel/x'],
    ['x~', 'x~'],
    ['~', homedir()],
    ['~/x', join(homedir(), 'x')],
    ['~/a/b/', `${join(homedir(), 'a/b')}/`],
    [`~${me.username}`, me.homedir],
    [`~${me.username}/x`, join(me.homedir, 'x')],
    ['~nobody/x', '/nonexistent/x'],
    ['~pdc-no-such-user-here/x', undefined],
    ['~-rf/x', undefined], // never handed to getent as an option
    ['~0/x', undefined], // all digits: a uid, not a user name
    ['~a b/x', undefined],
  ];
  it.each(cases)('%s -> %s', async (path, want) => {
    expect(await expandHome(path)).toBe(want);
  });

  it('~root comes from the password database, not from $HOME', async () => {
    const saved = process.env.HOME;
    process.env.HOME = dir;
    try {
      expect(await expandHome('~root/x')).toBe('/root/x');
      expect(await expandHome('~/x')).toBe(`${dir}/x`);
    } finally {
      process.env.HOME = saved;
    }
  });

  it('an unknown user is a source or target error naming the user', () => {
    expect(unknownUserError('~zed/x', 'source')).toMatchObject({ code: 'SOURCE_NOT_FOUND', message: expect.stringContaining('no user "zed"') });
    expect(unknownUserError('~zed/x', 'target')).toMatchObject({ code: 'TARGET_PARENT_MISSING', exitCode: 4 });
  });
});

describe('resolveDotDot', () => {
  mkdirSync(join(dir, 'a/b'), { recursive: true });
  mkdirSync(join(dir, 'elsewhere/deep'), { recursive: true });
  symlinkSync(join(dir, 'elsewhere/deep'), join(dir, 'link'));

  const ok: Array<[string, string]> = [
    ['a/b/f', 'a/b/f'], // no `..`: unchanged (relative paths stay relative)
    ['/x/missing/f', '/x/missing/f'], // missing parents without `..` are created later, as before
    ['a/..', 'a/..'], // `..` as the name: a directory, the stat decides
  ];
  it.each(ok)('%s stays %s', async (path, want) => {
    expect(await resolveDotDot(path)).toBe(want);
  });

  const resolved: Array<[string, string]> = [
    ['a/b/../f', 'a/f'],
    ['a/../a/b/../new/f', 'a/new/f'],
    ['link/../f', 'elsewhere/f'], // as the kernel does: `..` of the link's target
    ['a/b/../../new/sub/f', 'new/sub/f'],
  ];
  it.each(resolved)('%s resolves to %s under the test dir', async (path, want) => {
    // join() would collapse the `..` itself: build the string by hand.
    expect(await resolveDotDot(`${dir}/${path}`)).toBe(`${dir}/${want}`);
  });

  it('a missing component before `..` is TARGET_PARENT_MISSING naming it, and nothing is created', async () => {
    const before = readdirSync(dir).sort();
    const err = await resolveDotDot(`${dir}/a/missing/../f`).catch((e) => e);
    expect(err).toMatchObject({ code: 'TARGET_PARENT_MISSING', exitCode: 4 });
    expect(err.message).toContain(`${dir}/a/missing`);
    const nested = await resolveDotDot(`${dir}/m1/m2/../../f`).catch((e) => e);
    expect(nested).toMatchObject({ code: 'TARGET_PARENT_MISSING' });
    expect(nested.message).toContain(`${dir}/m1 `);
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(existsSync(join(dir, 'a/missing'))).toBe(false);
  });
});
