/**
 * cac, declared from the option table: one command taking every positional
 * argument, each table option, and a help text rendered from the same table.
 */
import { type CAC, cac, type Command } from 'cac';
import { EXIT_CODE_HELP } from '../errors/codes.js';
import { VERSION } from '../version.js';
import { GROUP_TITLES, OPTIONS, type OptionGroup, type OptionSpec, type RawFlags, describeOption, flagNames, flagsWithValue, keyOf } from './option-table.js';

export const USAGE = '[options] SOURCE... TARGET';

export const USAGE_NOTES = [
  'SOURCE and TARGET are local paths or [user@]host:path / ssh://[user@]host[:port]/path',
  '(at most one side remote). Several SOURCEs (all on one host) go into the directory TARGET;',
  'with -r a DIR/ copies its contents, DIR the directory itself. A local name containing a colon: write it as ./a:b',
];

export const EXAMPLES: ReadonlyArray<[string, string]> = [
  ['pdiffcopy data.ibd db2:/var/lib/mysql/shop/data.ibd', 'push to a remote host'],
  ['pdiffcopy db1:/srv/vm.img /srv/vm.img', 'pull from a remote host'],
  ['pdiffcopy -n big.img /mnt/backup/big.img', 'how similar are they?'],
  ['pdiffcopy -a /var/lib/mysql/ db2:/var/lib/mysql', 'a whole tree, with owner, mode, mtime'],
];

/** Flags as the action receives them: the table's options plus what came after `--`. */
export type ParsedFlags = RawFlags & { '--'?: Array<string | number> };

const VERSION_OPTION = OPTIONS.find((o) => o.builtin === 'version')!;

/**
 * Declare one option. cac camelCases option names before handing them to its
 * parser (mri), so mri does not know a dashed boolean such as --dry-run by the
 * name it is typed with and takes the next argument as its value: `--dry-run SRC
 * DST` would lose SRC. Registering the dashed spelling as one more name of the
 * option tells mri it is a boolean (what cac's own fix, cacjs/cac#169, does).
 */
function declare(command: Command, o: OptionSpec): void {
  command.option(o.value ? `${flagNames(o)} <${o.value}>` : flagNames(o), o.description);
  const takesNoValue = o.kind === 'flag' || o.kind === 'count';
  const declared = command.options[command.options.length - 1]!;
  if (takesNoValue && o.long.includes('-') && !o.long.startsWith('no-')) declared.names.push(o.long);
  // cac gives a `no-` option a default of true, which would make "not given" and
  // `--progress` look alike; resolveConfig applies the table's defaults instead.
  if (o.long.startsWith('no-')) delete declared.config.default;
}

export function createCli(action: (args: string[], flags: ParsedFlags) => unknown): CAC {
  const cli = cac('pdiffcopy');
  const command = cli.command('[...paths]', '').usage(USAGE);
  for (const o of OPTIONS) if (!o.builtin) declare(command, o);
  // Every positional argument, including those after `--`, reaches the action:
  // one it did not see could not be refused.
  command.action((paths: Array<string | number>, flags: ParsedFlags) => {
    const typed = asTyped(cli.rawArgs.slice(2), paths, flags);
    return action([...typed.paths, ...(flags['--'] ?? [])].map(String), typed.flags);
  });
  cli.help((sections) => helpSections(sections));
  cli.version(VERSION, flagNames(VERSION_OPTION));
  return cli;
}

/**
 * mri turns every word that reads as a number into one (`007` -> 7, `1e3` -> 1000,
 * '' -> 0), which would quietly change a file name. Positional arguments and the
 * values of options that take text are given back exactly as typed: the words mri
 * took them from are found again by its own rule (a value follows its option, or
 * comes after `=`; `--` ends the options).
 */
export function asTyped(argv: readonly string[], paths: ReadonlyArray<string | number>, flags: ParsedFlags): { paths: Array<string | number>; flags: ParsedFlags } {
  const byFlag = new Map<string, OptionSpec>();
  for (const o of OPTIONS) for (const n of flagNames(o).split(', ')) byFlag.set(n, o);
  const valueOf = (word: string): OptionSpec | undefined => {
    const o = word.startsWith('--') ? byFlag.get(word) : /^-[^-]/.test(word) ? byFlag.get(`-${word.slice(-1)}`) : undefined;
    return o && (o.kind === 'value' || o.kind === 'list') ? o : undefined;
  };
  const positional: string[] = [];
  const values = new Map<OptionSpec, string[]>();
  const end = argv.indexOf('--');
  const words = end === -1 ? argv : argv.slice(0, end);
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const eq = w.startsWith('--') ? w.indexOf('=') : -1;
    const o = eq > 0 ? valueOf(w.slice(0, eq)) : valueOf(w);
    if (o && eq > 0) values.set(o, [...(values.get(o) ?? []), w.slice(eq + 1)]);
    else if (o && i + 1 < words.length && !words[i + 1]!.startsWith('-')) values.set(o, [...(values.get(o) ?? []), words[++i]!]);
    else if (!w.startsWith('-')) positional.push(w);
  }
  const out: Record<string, unknown> = { ...flags };
  for (const [o, texts] of values) {
    const key = keyOf(o);
    const got = out[key];
    const n = Array.isArray(got) ? got.length : got === undefined ? 0 : 1;
    if (n === texts.length) out[key] = Array.isArray(got) ? texts : texts[0];
  }
  // Should mri ever split the words differently, its own result stands.
  return { paths: positional.length === paths.length ? positional : [...paths], flags: out as ParsedFlags };
}

/** cac's sections minus its generic "Commands" ones, with the options, exit codes and examples from the tables. */
function helpSections(sections: Array<{ title?: string; body: string }>): Array<{ title?: string; body: string }> {
  const head = sections.filter((s) => s.title === undefined || s.title === 'Usage');
  const usage = head.find((s) => s.title === 'Usage');
  if (usage) usage.body = [usage.body, '', ...USAGE_NOTES.map((l) => `  ${l}`)].join('\n');
  return [
    ...head,
    ...optionHelp(),
    { title: 'Exit codes', body: EXIT_CODE_HELP.map(([code, text]) => helpRow(String(code), text, 6)).join('\n') },
    { title: 'Examples', body: EXAMPLES.map(([cmd, what]) => `  ${cmd.padEnd(54)} ${what}`).join('\n') },
  ];
}

const HELP_WIDTH = 100;

/** One section per group: flags in a column, descriptions wrapped beside them. */
export function optionHelp(): Array<{ title: string; body: string }> {
  const width = Math.max(...OPTIONS.map((o) => flagsWithValue(o).length)) + 4;
  const groups = [...new Set(OPTIONS.map((o) => o.group))] as OptionGroup[];
  return groups.map((g) => ({
    title: GROUP_TITLES[g],
    body: OPTIONS.filter((o) => o.group === g)
      .map((o) => helpRow(flagsWithValue(o), describeOption(o), width))
      .join('\n'),
  }));
}

/** `  name    text`, the text wrapped into a column that starts at `width`. */
function helpRow(name: string, text: string, width: number): string {
  return wrap(text, HELP_WIDTH - width)
    .map((line, i) => (i === 0 ? `  ${name.padEnd(width - 2)}` : ' '.repeat(width)) + line)
    .join('\n');
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}

/**
 * cac reports an unknown option by its camelCased key (`--noSuchOption` for
 * `--no-such-option`): name it as it was typed instead.
 */
export function unknownOptionAsTyped(message: string, argv: readonly string[]): string {
  const m = /^Unknown option `-{1,2}(.+)`$/.exec(message);
  if (!m) return message;
  const key = m[1]!;
  const camel = (s: string) => s.replace(/([a-z])-([a-z])/g, (_, a: string, b: string) => a + b.toUpperCase());
  const end = argv.indexOf('--');
  for (const arg of end === -1 ? argv : argv.slice(0, end)) {
    if (!arg.startsWith('--')) continue;
    const name = arg.slice(2).split('=')[0]!;
    if (name === key || camel(name) === key || camel(name.replace(/^no-/, '')) === key) return `unknown option --${name}`;
  }
  return `unknown option ${key.length > 1 ? '--' : '-'}${key}`;
}
