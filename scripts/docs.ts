/**
 * Writes the documents made from the option table (src/cli/docs.ts): the README's
 * option and exit-code tables, the man page and the shell completions. Run: npm run docs.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { generatedFiles, withReadmeSections } from '../src/cli/docs.js';

const root = resolve(import.meta.dirname, '..');
const readme = join(root, 'README.md');
writeFileSync(readme, withReadmeSections(readFileSync(readme, 'utf8')));
for (const [path, text] of Object.entries(generatedFiles())) {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}
console.log(`updated README.md, ${Object.keys(generatedFiles()).join(', ')}`);
