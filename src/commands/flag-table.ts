/**
 * A command's flags as one table: what parses them and what `--help` prints, so the two cannot
 * drift. Parsing follows Go's pflag (kubectl, helm): `--flag value`, `--flag=value`, `-n value`,
 * `-nvalue`; a boolean is `--flag`, `--flag=true|false` or `--flag true|false`; `--` ends the
 * flags. A flag the table does not have is refused with the nearest one it has.
 */
import { ConfigError } from './errors.js'
import { osaDistance } from '../policy/tag-suggestions.js'
import { FLAG_ENV } from './flags.js'
import { PROGRAM } from './program.js'

export interface FlagSpec {
  readonly type: 'string' | 'boolean'
  /** Repeatable (`--exempt-image A --exempt-image B`). */
  readonly multiple?: boolean
  readonly short?: string
  /** The value's placeholder in help: FILE, DIR, DURATION, N, … */
  readonly value?: string
  /** What the flag means, one sentence. */
  readonly help: string
  /** The default as help shows it. */
  readonly default?: string
}

export type FlagTable = Readonly<Record<string, FlagSpec>>

/** What a table parses to: strings, lists for repeatable flags, booleans. */
export type FlagValues<T extends FlagTable> = {
  -readonly [K in keyof T]?: T[K]['type'] extends 'boolean'
    ? boolean
    : T[K]['multiple'] extends true
      ? string[]
      : string
}

const BOOLEAN_WORDS: Readonly<Record<string, boolean>> = { true: true, false: false }

export function parseFlagTable<T extends FlagTable>(
  command: string,
  argv: readonly string[],
  table: T,
  allowPositionals: boolean,
): { values: FlagValues<T>; positionals: string[] } {
  const values: Record<string, string | string[] | boolean> = {}
  const positionals: string[] = []
  const shorts = new Map(Object.entries(table).flatMap(([name, s]) => (s.short === undefined ? [] : [[s.short, name]])))
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg)
      continue
    }
    let name: string
    let inline: string | undefined
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq)
      inline = eq < 0 ? undefined : arg.slice(eq + 1)
    } else {
      const long = shorts.get(arg[1]!)
      if (long === undefined) throw unknownFlag(command, arg, table)
      name = long
      const rest = arg.slice(2)
      inline = rest === '' ? undefined : rest.startsWith('=') ? rest.slice(1) : rest
    }
    const spec = table[name]
    if (spec === undefined) throw unknownFlag(command, `--${name}`, table)
    const shown = arg.startsWith('--') ? `--${name}` : arg.slice(0, 2)
    let value: string | boolean
    if (spec.type === 'boolean') {
      const word = inline ?? (argv[i + 1] !== undefined && argv[i + 1]! in BOOLEAN_WORDS ? argv[++i] : 'true')!
      if (!(word in BOOLEAN_WORDS)) throw new ConfigError(shown, `takes true or false, not ${JSON.stringify(word)}`)
      value = BOOLEAN_WORDS[word]!
    } else {
      const next = inline ?? argv[++i]
      if (next === undefined)
        throw new ConfigError(shown, `needs a value${spec.value === undefined ? '' : ` (${spec.value})`}`)
      value = next
    }
    if (spec.multiple === true) values[name] = [...((values[name] as string[] | undefined) ?? []), value as string]
    else values[name] = value
  }
  if (!allowPositionals && positionals.length > 0)
    throw new ConfigError(command, `unexpected argument ${JSON.stringify(positionals[0])}`)
  return { values: values as FlagValues<T>, positionals }
}

function unknownFlag(command: string, written: string, table: FlagTable): ConfigError {
  const names = Object.entries(table).flatMap(([name, s]) => [
    `--${name}`,
    ...(s.short === undefined ? [] : [`-${s.short}`]),
  ])
  const near = nearest(written.split('=')[0]!, names)
  return new ConfigError(command, `unknown flag ${written}${near === undefined ? '' : ` (did you mean ${near}?)`}`)
}

/** The candidate nearest to `word` by edit distance, if near enough to be a typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  // A third of the word's letters, at least two: `--tmeout` finds `--timeout`, `--x` finds nothing.
  const limit = Math.max(2, Math.floor(word.length / 3))
  let best: { name: string; d: number } | undefined
  for (const c of candidates) {
    // The distance tag suggestions use (a transposition is one typo), cut off past the limit.
    const d = osaDistance(word, c, limit)
    if (d <= limit && (best === undefined || d < best.d)) best = { name: c, d }
  }
  return best?.name
}

/** What `COMMAND --help` says beside the flags. */
export interface CommandHelp {
  name: string
  /** One line: what the command is for. */
  summary: string
  /** The synopsis lines, without `pullguard `. */
  usage: readonly string[]
  /** A paragraph or two after the synopsis. */
  description: readonly string[]
  exitCodes: ReadonlyArray<readonly [number, string]>
  examples: ReadonlyArray<readonly [comment: string, command: string]>
}

/** The whole help of a command, from its table. */
export function renderHelp(help: CommandHelp, table: FlagTable): string {
  const rows = Object.entries(table).map(([name, s]) => {
    const left = `${s.short === undefined ? '    ' : `-${s.short}, `}--${name}${s.type === 'boolean' ? '' : ` ${s.value ?? 'VALUE'}`}`
    const env = (FLAG_ENV as Readonly<Record<string, string>>)[name]
    const notes = [
      s.multiple === true ? 'repeatable' : undefined,
      s.default === undefined ? undefined : `default ${s.default}`,
      env === undefined ? undefined : `env ${env}`,
    ].filter((n): n is string => n !== undefined)
    return [left, `${s.help}${notes.length === 0 ? '' : ` (${notes.join('; ')})`}`] as const
  })
  rows.push(['-h, --help', 'show this help'])
  const width = Math.min(44, Math.max(...rows.map(([l]) => l.length)))
  const flagLines = rows.map(([l, r]) =>
    l.length > width ? `  ${l}\n  ${' '.repeat(width)}  ${r}` : `  ${l.padEnd(width)}  ${r}`,
  )
  return [
    `${PROGRAM} ${help.name}: ${help.summary}`,
    '',
    'Usage:',
    ...help.usage.map((u) => `  ${PROGRAM} ${u}`),
    '',
    ...help.description.flatMap((p) => [p, '']),
    'Flags:',
    ...flagLines,
    '',
    'Exit codes:',
    ...help.exitCodes.map(([code, meaning]) => `  ${code}  ${meaning}`),
    '',
    'Examples:',
    ...help.examples.flatMap(([comment, command]) => [
      `  # ${comment}`,
      `  ${command.replace(/^pullguard /, `${PROGRAM} `)}`,
    ]),
    '',
  ].join('\n')
}
