/**
 * The documents made from the option table are current: README's option tables,
 * the man page and the shell completions equal what src/cli/docs.ts renders now
 * (run `npm run docs` after changing the table). The bash completion is run.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BASH_COMPLETION, generatedFiles, readmeExitCodes, readmeOptions, withReadmeSections } from '../../src/cli/docs.js';
import { OPTIONS, flagsWithValue } from '../../src/cli/option-table.js';
import { LISTED_HASH_METHODS } from '../../src/hash/methods.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

describe('generated documents are current (npm run docs)', () => {
  it("README's option and exit-code tables", () => {
    const readme = read('README.md');
    expect(readme).toContain(readmeOptions());
    expect(readme).toContain(readmeExitCodes());
    expect(withReadmeSections(readme)).toBe(readme);
  });

  for (const [path, text] of Object.entries(generatedFiles())) {
    it(path, () => {
      expect(read(path)).toBe(text);
    });
  }

  it('every option appears in the README and the man page', () => {
    const man = read('man/pdiffcopy.1');
    for (const o of OPTIONS) {
      expect(readmeOptions()).toContain(`\`${flagsWithValue(o)}\``);
      expect(man).toContain(`\\fB\\-\\-${o.long.replace(/-/g, '\\-')}\\fR`);
    }
  });

  it('package.json ships the man page and the completions', () => {
    const pkg = JSON.parse(read('package.json')) as { files: string[]; man: string[] };
    expect(pkg.files).toEqual(expect.arrayContaining(['man', 'completions']));
    expect(pkg.man).toEqual(['./man/pdiffcopy.1']);
  });
});

describe('bash completion', () => {
  /** What _pdiffcopy offers for the command line `words` (the last one being completed). */
  function complete(words: string[]): string[] {
    const script = [
      `source ${JSON.stringify(join(ROOT, BASH_COMPLETION))}`,
      `COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(' ')})`,
      `COMP_CWORD=${words.length - 1}`,
      '_pdiffcopy',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    return execFileSync('bash', ['--norc', '--noprofile', '-c', script], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
  }

  it('completes long options', () => {
    expect(complete(['pdiffcopy', '--dry'])).toEqual(['--dry-run']);
    expect(complete(['pdiffcopy', '--ssh-'])).toEqual(['--ssh-config', '--ssh-option']);
  });

  it('completes hash names after -m, files after -i, nothing after -b', () => {
    expect(complete(['pdiffcopy', '-m', ''])).toEqual([...LISTED_HASH_METHODS]);
    expect(complete(['pdiffcopy', '-i', 'package.j'])).toEqual(['package.json']);
    expect(complete(['pdiffcopy', '-b', ''])).toEqual([]);
  });

  it('completes file names for SOURCE and TARGET', () => {
    expect(complete(['pdiffcopy', '-n', 'READM'])).toEqual(['README.md']);
  });
});

describe('the package', () => {
  it('ships the CLI, the agent, the man page, the completions and the licence, and no source maps', () => {
    // --ignore-scripts: list what `npm pack` would ship from the dist/ that `npm test` built.
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const files = (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining(['LICENSE', 'bin/pdiffcopy.js', 'bin/start.js', 'dist/cli.js', 'dist/agent.cjs', 'dist/hash-worker.js', 'man/pdiffcopy.1', ...Object.keys(generatedFiles())]),
    );
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('src/'))).toEqual([]);
    expect(read('LICENSE')).toMatch(/^MIT License\n\nCopyright \(c\) 2026 the pdiffcopy authors\n/);
  });
});
