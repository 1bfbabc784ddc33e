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
 * Pure: the caller reads the file. Drop-in files (registries.conf.d) are not read.
 */
import { TomlError, parse } from 'smol-toml'
import { MirrorConfigError } from './errors.js'

export interface PullSource {
  /** The rewritten reference, without tag or digest: host[/path]. */
  location: string
  insecure: boolean
  mirror: boolean
}

export interface RegistryRule {
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

/** Parses the file's `[[registry]]` tables; throws MirrorConfigError (RegistriesConfInvalid) naming the file. */
export function parseRegistriesConf(file: string, text: string): RegistryRule[] {
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
  const tables = doc['registry'] ?? []
  if (!Array.isArray(tables))
    throw new MirrorConfigError('RegistriesConfInvalid', file, 'registry must be an array of tables ([[registry]])')
  const rules: RegistryRule[] = []
  const seen = new Set<string>()
  try {
    tables.forEach((raw: unknown, i) => {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        throw new Error(`[[registry]] ${i + 1} must be a table`)
      const t = raw as Record<string, unknown>
      const where = `[[registry]] ${i + 1}`
      const location = (str(t, 'location', where) ?? '').replace(/\/+$/, '')
      const prefix = (str(t, 'prefix', where) ?? location).replace(/\/+$/, '')
      const blocked = bool(t, 'blocked', where)
      if (prefix === '') throw new Error(`${where}: needs a prefix or a location`)
      if (location === '' && !prefix.startsWith('*.') && !blocked)
        throw new Error(`${where}: needs a location (only a blocked or *. prefix may go without)`)
      if (prefix.startsWith('*.') && location !== '' && location !== prefix)
        throw new Error(`${where}: a *. prefix cannot be rewritten to another location`)
      if (seen.has(prefix)) throw new Error(`${where}: prefix ${prefix} is given twice`)
      seen.add(prefix)
      const byDigestOnly = bool(t, 'mirror-by-digest-only', where)
      const mirrorTables = t['mirror'] ?? []
      if (!Array.isArray(mirrorTables))
        throw new Error(`${where}: mirror must be an array of tables ([[registry.mirror]])`)
      const mirrors = mirrorTables.map((m: unknown, j) => {
        const mw = `${where} mirror ${j + 1}`
        if (typeof m !== 'object' || m === null) throw new Error(`${mw} must be a table`)
        const mt = m as Record<string, unknown>
        const loc = (str(mt, 'location', mw) ?? '').replace(/\/+$/, '')
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
      rules.push({
        prefix,
        location: location === '' ? prefix : location,
        insecure: bool(t, 'insecure', where),
        blocked,
        mirrors,
      })
    })
  } catch (err) {
    throw new MirrorConfigError('RegistriesConfInvalid', file, (err as Error).message)
  }
  return rules
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
  | { blocked: true; rule: RegistryRule }
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
  // containers-image rewriteReference: location + what follows the match; a *. rule's own (empty)
  // location keeps the reference as it is, its mirrors do not.
  const primary = rule.prefix.startsWith('*.') ? name : `${rule.location}${rest}`
  const mirrors = rule.mirrors
    .filter((m) => m.pullFrom === 'all' || (m.pullFrom === 'digest-only') === byDigest)
    .map((m) => ({ location: `${m.location}${rest}`, insecure: m.insecure, mirror: true }))
  return { blocked: false, sources: [...mirrors, { location: primary, insecure: rule.insecure, mirror: false }], rule }
}
