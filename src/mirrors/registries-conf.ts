/**
 * CRI-O's (containers-image's) registries.conf, version 2 (containers-registries.conf(5),
 * pkg/sysregistriesv2): which `[[registry]]` table a reference falls under, and where the runtime
 * then pulls it from, so pullguard asks what a CRI-O node asks:
 * - a table's `prefix` (default: its `location`) matches a reference equal to it or continuing with
 *   `/`, `:` or `@`; `*.example.com` matches any subdomain; the longest match wins;
 * - `blocked = true` refuses every pull under it;
 * - otherwise the pull sources are its `[[registry.mirror]]`s in order (a `pull-from-mirror` of
 *   `digest-only` serves only references by digest, `tag-only` only by tag; the deprecated
 *   `mirror-by-digest-only` makes every mirror digest-only), then `location` itself, each with the
 *   part of the reference after the prefix;
 * - `insecure` allows plain HTTP or an unverified certificate for that location.
 * A file may also set `unqualified-search-registries` and `[aliases]` (short names, short-names.ts).
 * Drop-in files (registries.conf.d/*.conf, read after the main file in name order) merge as
 * containers-image merges them (parsedConfig.updateWithConfigurationFrom): a table replaces the
 * one with its prefix, a search list that is set (even to []) replaces the list, aliases merge
 * name by name and an alias set to "" removes the name's earlier one.
 * Pure: the caller reads the files.
 */
import { TomlError, parse } from 'smol-toml'
import { domainProblem, tryParseReference } from '../reference/index.js'
import { MirrorConfigError } from './errors.js'
import { aliasTargetProblem, shortNameProblem } from './short-names.js'

export interface PullSource {
  /** The rewritten reference, without tag or digest: host[/path]. */
  location: string
  insecure: boolean
  mirror: boolean
}

export interface RegistryRule {
  /** The file that set it (a drop-in's table replaces the main file's with the same prefix). */
  file?: string
  prefix: string
  location: string
  insecure: boolean
  blocked: boolean
  mirrors: Array<{ location: string; insecure: boolean; pullFrom: 'all' | 'digest-only' | 'tag-only' }>
}

function str(table: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = table[key]
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw new Error(`${where}: ${key} must be a string`)
  return v
}

function bool(table: Record<string, unknown>, key: string, where: string): boolean {
  const v = table[key]
  if (v === undefined) return false
  if (typeof v !== 'boolean') throw new Error(`${where}: ${key} must be true or false`)
  return v
}

/** One file as written: its tables, and what it says about short names. */
export interface RegistriesConfFile {
  file: string
  rules: RegistryRule[]
  /** Set when the file has the key, even as []: a later file's list replaces an earlier one. */
  search?: string[]
  /** Short name → fully qualified repository (normalized), or '' where the file removes an alias. */
  aliases: Map<string, string>
}

/** CRI-O's short-name modes (crio.conf `short_name_mode`); registries.conf's `short-name-mode` is checked, never used. */
const SHORT_NAME_MODES = ['enforcing', 'disabled', 'permissive']

/** The file's `[[registry]]` tables; throws MirrorConfigError (RegistriesConfInvalid) naming the file. */
export function parseRegistriesConf(file: string, text: string): RegistryRule[] {
  return parseRegistriesConfFile(file, text).rules
}

/**
 * The whole file, checked as containers-image checks it (loadConfigFile, postProcessRegistries):
 * whatever it refuses makes every pull on the node fail, so it is an error here too. A drop-in
 * (`dropIn`) may not use the version 1 format.
 */
export function parseRegistriesConfFile(file: string, text: string): RegistriesConfFile {
  let doc: Record<string, unknown>
  try {
    doc = parse(text) as Record<string, unknown>
  } catch (err) {
    throw new MirrorConfigError(
      'RegistriesConfInvalid',
      file,
      err instanceof TomlError ? (err.message.split('\n')[0] ?? 'invalid TOML') : String(err),
    )
  }
  if (doc['registries'] !== undefined)
    throw new MirrorConfigError(
      'RegistriesConfInvalid',
      file,
      'this is the version 1 format ([registries.search] …); pullguard reads version 2 ([[registry]])',
    )
  try {
    const rules = parseRules(doc['registry'] ?? []).map((r) => ({ ...r, file }))
    const search = parseSearch(doc['unqualified-search-registries'])
    const mode = doc['short-name-mode']
    if (mode !== undefined && (typeof mode !== 'string' || !SHORT_NAME_MODES.includes(mode)))
      throw new Error(`invalid short-name-mode ${JSON.stringify(mode)} (enforcing, permissive or disabled)`)
    return { file, rules, ...(search === undefined ? {} : { search }), aliases: parseAliases(doc['aliases']) }
  } catch (err) {
    throw new MirrorConfigError('RegistriesConfInvalid', file, (err as Error).message)
  }
}

function parseSearch(value: unknown): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value)) throw new Error('unqualified-search-registries must be a list of registries')
  return value.map((v: unknown) => {
    if (typeof v !== 'string') throw new Error('unqualified-search-registries must be a list of registries')
    const registry = v.replace(/\/+$/, '')
    if (/^https?:\/\//.test(registry))
      throw new Error(`invalid location ${JSON.stringify(v)}: URI schemes are not supported`)
    if (registry === '' || registry.includes('/') || domainProblem(registry) !== undefined)
      throw new Error(`invalid unqualified-search-registries entry ${JSON.stringify(registry)}`)
    return registry
  })
}

function parseAliases(value: unknown): Map<string, string> {
  const aliases = new Map<string, string>()
  if (value === undefined) return aliases
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error('aliases must be a table ([aliases])')
  const problems: string[] = []
  for (const [name, target] of Object.entries(value as Record<string, unknown>)) {
    const bad = shortNameProblem(name)
    if (bad !== undefined) problems.push(bad)
    if (typeof target !== 'string') {
      problems.push(`alias ${JSON.stringify(name)} must be a string`)
      continue
    }
    if (target === '') {
      aliases.set(name, '')
      continue
    }
    const normalized = aliasTargetProblem(target)
    if (normalized.problem !== undefined) problems.push(normalized.problem)
    else aliases.set(name, normalized.name)
  }
  if (problems.length > 0) throw new Error(`short-name aliases: ${problems.join('; ')}`)
  return aliases
}

function parseRules(tables: unknown): RegistryRule[] {
  if (!Array.isArray(tables)) throw new Error('registry must be an array of tables ([[registry]])')
  const rules: RegistryRule[] = []
  tables.forEach((raw: unknown, i) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new Error(`[[registry]] ${i + 1} must be a table`)
    const t = raw as Record<string, unknown>
    const where = `[[registry]] ${i + 1}`
    const location = trimLocation(str(t, 'location', where) ?? '')
    const prefix = trimLocation(str(t, 'prefix', where) ?? location)
    const blocked = bool(t, 'blocked', where)
    if (prefix === '') throw new Error(`${where}: needs a prefix or a location`)
    if (location === '' && !prefix.startsWith('*.') && !blocked)
      throw new Error(`${where}: needs a location (only a blocked or *. prefix may go without)`)
    if (prefix.startsWith('*.') && /[/@:]/.test(prefix))
      throw new Error(`${where}: a wildcard prefix must be in the form *.example.com, not ${prefix}`)
    if (t['pull-from-mirror'] !== undefined)
      throw new Error(`${where}: pull-from-mirror must not be set for a non-mirror registry`)
    const byDigestOnly = bool(t, 'mirror-by-digest-only', where)
    const mirrorTables = t['mirror'] ?? []
    if (!Array.isArray(mirrorTables))
      throw new Error(`${where}: mirror must be an array of tables ([[registry.mirror]])`)
    const mirrors = mirrorTables.map((m: unknown, j) => {
      const mw = `${where} mirror ${j + 1}`
      if (typeof m !== 'object' || m === null) throw new Error(`${mw} must be a table`)
      const mt = m as Record<string, unknown>
      const loc = trimLocation(str(mt, 'location', mw) ?? '')
      if (loc === '') throw new Error(`${mw}: needs a location`)
      const pullFrom = str(mt, 'pull-from-mirror', mw) ?? (byDigestOnly ? 'digest-only' : 'all')
      if (pullFrom !== 'all' && pullFrom !== 'digest-only' && pullFrom !== 'tag-only')
        throw new Error(`${mw}: pull-from-mirror must be all, digest-only or tag-only`)
      if (byDigestOnly && pullFrom !== 'digest-only')
        throw new Error(`${mw}: pull-from-mirror ${pullFrom} contradicts the registry's mirror-by-digest-only`)
      return {
        location: loc,
        insecure: bool(mt, 'insecure', mw),
        pullFrom: pullFrom as 'all' | 'digest-only' | 'tag-only',
      }
    })
    // A *. prefix without a location pulls each name as written; any other prefix without one is blocked.
    const rule = {
      prefix,
      location: location === '' && !prefix.startsWith('*.') ? prefix : location,
      insecure: bool(t, 'insecure', where),
      blocked,
      mirrors,
    }
    // One location named twice must agree on insecure and blocked (containers-image refuses the file).
    const key = (r: RegistryRule): string => (r.location === '' ? r.prefix : r.location)
    const other = rules.find((r) => key(r) === key(rule))
    if (other !== undefined && (other.insecure !== rule.insecure || other.blocked !== rule.blocked))
      throw new Error(
        `${where}: registry ${key(rule)} is defined more than once with conflicting ${other.insecure !== rule.insecure ? 'insecure' : 'blocked'} settings`,
      )
    // A prefix given twice: the first table counts, the later ones are ignored (as containers-image does).
    if (!rules.some((r) => r.prefix === prefix)) rules.push(rule)
  })
  return rules
}

/** Trailing slashes go; a URL scheme is refused (containers-image parseLocation). */
function trimLocation(input: string): string {
  const trimmed = input.replace(/\/+$/, '')
  if (/^https?:\/\//.test(trimmed))
    throw new Error(`invalid location ${JSON.stringify(input)}: URI schemes are not supported`)
  return trimmed
}

/** The main file and its drop-ins, merged; what short names resolve with, and where each part was set. */
export interface RegistriesConf {
  rules: RegistryRule[]
  search: string[]
  /** The file whose search list counts: the last that sets one, else the main file. */
  searchOrigin: string | undefined
  /** Short name → { fully qualified repository, or '' (removed), the file that set it }. */
  aliases: Map<string, { target: string; origin: string }>
}

/**
 * Files in reading order (the main file, then the drop-ins by name), merged as containers-image's
 * updateWithConfigurationFrom merges them.
 */
export function mergeRegistriesConf(files: readonly RegistriesConfFile[]): RegistriesConf {
  const byPrefix = new Map<string, RegistryRule>()
  let search: string[] = []
  // containers-image names the main file as the list's origin even when it sets none.
  let searchOrigin = files[0]?.file
  const aliases = new Map<string, { target: string; origin: string }>()
  for (const f of files) {
    for (const rule of f.rules) byPrefix.set(rule.prefix, rule)
    if (f.search !== undefined) {
      search = f.search
      searchOrigin = f.file
    }
    for (const [name, target] of f.aliases) aliases.set(name, { target, origin: f.file })
  }
  const rules = [...byPrefix.keys()].sort().map((p) => byPrefix.get(p)!)
  return { rules, search, searchOrigin, aliases }
}

/**
 * Where in `name` (host/path, no tag) the prefix ends, or -1 when it does not match
 * (containers-image refMatchingPrefix / refMatchingSubdomainPrefix): a `*.example.com` prefix
 * matches `.example.com` found before the first `/` and followed by the end, `:`, `/` or `@`.
 */
function matchEnd(name: string, prefix: string): number {
  if (prefix.startsWith('*.')) {
    const suffix = prefix.slice(1)
    const at = name.indexOf(suffix)
    if (at <= 0 || name.slice(0, at).includes('/')) return -1
    const end = at + suffix.length
    return end === name.length || ':/@'.includes(name[end]!) ? end : -1
  }
  if (name === prefix) return prefix.length
  return name.startsWith(prefix) && '/:@'.includes(name[prefix.length] ?? '') ? prefix.length : -1
}

/**
 * The rule for `name` (host/repository), if any: the longest prefix *as written* that matches, the
 * first in the file on a tie (containers-image findRegistryWithParsedConfig).
 */
export function findRule(
  rules: readonly RegistryRule[],
  name: string,
): { rule: RegistryRule; matched: number } | undefined {
  let best: { rule: RegistryRule; matched: number } | undefined
  for (const rule of rules) {
    const end = matchEnd(name, rule.prefix)
    if (end >= 0 && (best === undefined || rule.prefix.length > best.rule.prefix.length)) best = { rule, matched: end }
  }
  return best
}

export type PullPlan =
  /** `problem`: not `blocked = true`, but a location the runtime cannot rewrite the name to, so every pull under the rule fails. */
  | { blocked: true; rule: RegistryRule; problem?: string }
  | { blocked: false; sources: PullSource[]; rule: RegistryRule | undefined }

/**
 * Where the runtime pulls `name` (host/repository) from: blocked, or its sources in order. Without a
 * matching rule, the reference itself (not insecure).
 */
export function pullPlan(rules: readonly RegistryRule[], name: string, byDigest: boolean): PullPlan {
  const found = findRule(rules, name)
  if (found === undefined)
    return { blocked: false, sources: [{ location: name, insecure: false, mirror: false }], rule: undefined }
  const { rule, matched } = found
  if (rule.blocked) return { blocked: true, rule }
  const rest = name.slice(matched)
  // containers-image rewriteReference: location + what follows the match; a *. rule without a
  // location keeps the reference as it is, its mirrors do not.
  const primary = rule.location === '' ? name : `${rule.location}${rest}`
  const mirrors = rule.mirrors
    .filter((m) => m.pullFrom === 'all' || (m.pullFrom === 'digest-only') === byDigest)
    .map((m) => ({ location: `${m.location}${rest}`, insecure: m.insecure, mirror: true }))
  const sources = [...mirrors, { location: primary, insecure: rule.insecure, mirror: false }]
  // One source that is no canonical name fails the whole pull (PullSourcesFromReference returns the error).
  const broken = sources.find((s) => !isCanonicalName(s.location))
  if (broken !== undefined)
    return {
      blocked: true,
      rule,
      problem: `rewriting ${name} to ${broken.location} gives no valid image name (containers-image: "rewriting reference: invalid reference format")`,
    }
  return { blocked: false, sources, rule }
}

/** Whether `name` (host/path) parses as a reference and is already in its normalized form (reference.ParseNamed). */
function isCanonicalName(name: string): boolean {
  const parsed = tryParseReference(name)
  return parsed.ok && parsed.ref.name === name
}
