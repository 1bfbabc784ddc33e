/**
 * registries.d (containers-registries.d(5)) as containers-image v5.38.0 reads it (docker/registries_d.go):
 * per-namespace signature sources, in particular `use-sigstore-attachments`, without which
 * containers-image never looks for cosign's `sha256-<hex>.sig` attachments and a sigstoreSigned
 * requirement sees no signature at all.
 *
 * Which files, for the caller to pick: every entry of the directory whose name ends in ".yaml"
 * (".yml" is ignored), in directory order (unsorted; only error messages depend on it); a file that
 * vanishes between listing and reading is skipped; a missing directory is an empty configuration.
 * The directory is SystemContext.RegistriesDirPath when set, else $HOME/.config/containers/registries.d
 * when it exists (for CRI-O running as root, /root/.config/…), else /etc/containers/registries.d.
 * containers-image reads them again for every image it opens.
 *
 * The YAML is decoded like gopkg.in/yaml.v3 into Go structs: unknown keys are ignored, any scalar
 * is taken as text for a string field, booleans are plain true/false (three casings) or y/yes/on, n/no/off.
 * A namespace or "default-docker" defined in two files is an error.
 */
import yaml from 'js-yaml'
import type { ImageReference } from '../reference/index.js'
import { SignaturePolicyError } from './errors.js'
import { dockerScopes } from './scopes.js'

export interface Namespace {
  /** `lookaside`, else the deprecated `sigstore`: where simple-signing signatures are read from. */
  lookaside?: string
  useSigstoreAttachments?: boolean
}

export interface RegistriesD {
  defaultDocker?: Namespace
  /** Keyed like policy.json docker scopes (dockerScopes). */
  docker: Map<string, Namespace>
}

export function parseRegistriesD(files: ReadonlyArray<{ file: string; text: string }>): RegistriesD {
  const merged: RegistriesD = { docker: new Map() }
  let defaultFrom = ''
  const from = new Map<string, string>()
  for (const { file, text } of files) {
    const config = readFile(file, text)
    const conflict = (what: string, first: string): SignaturePolicyError =>
      new SignaturePolicyError(
        'RegistriesDInvalid',
        file,
        `Error parsing signature storage configuration: ${what} defined both in ${JSON.stringify(first)} and ${JSON.stringify(file)}`,
      )
    if (config.defaultDocker !== undefined) {
      if (merged.defaultDocker !== undefined) throw conflict('"default-docker"', defaultFrom)
      merged.defaultDocker = config.defaultDocker
      defaultFrom = file
    }
    for (const [scope, namespace] of config.docker) {
      const first = from.get(scope)
      if (first !== undefined) throw conflict(`"docker" namespace ${JSON.stringify(scope)}`, first)
      merged.docker.set(scope, namespace)
      from.set(scope, file)
    }
  }
  return merged
}

/**
 * registryConfiguration.useSigstoreAttachments: the most specific namespace that sets it, else
 * default-docker, else false. `ref` is the reference pulled from — a mirror's rewritten reference when
 * a mirror serves the pull — since containers-image asks per pull source (newImageSourceAttempt).
 */
export function useSigstoreAttachments(d: RegistriesD, ref: ImageReference): boolean {
  return setting(d, ref, (ns) => ns.useSigstoreAttachments) ?? false
}

/**
 * registryConfiguration.signatureTopLevel for reading, for the reference pulled from, as above: the
 * most specific namespace with a lookaside. undefined means none is configured; containers-image then
 * uses file:///var/lib/containers/sigstore (for root), and only when the registry does not serve
 * signatures itself (X-Registry-Supports-Signatures). A lookaside that is no URL fails the pull.
 */
export function lookaside(d: RegistriesD, ref: ImageReference): string | undefined {
  return setting(d, ref, (ns) => ns.lookaside)
}

/** A namespace that matches but leaves the setting out does not stop the search. */
function setting<T>(d: RegistriesD, ref: ImageReference, get: (ns: Namespace) => T | undefined): T | undefined {
  for (const scope of dockerScopes(ref)) {
    const ns = d.docker.get(scope)
    const value = ns === undefined ? undefined : get(ns)
    if (value !== undefined) return value
  }
  return d.defaultDocker === undefined ? undefined : get(d.defaultDocker)
}

// --- one file -----------------------------------------------------------------------------------

/**
 * yaml.v3 resolves plain scalars but takes quoted ones as text: the failsafe schema keeps every scalar
 * as text, and this implicit type wraps the plain ones so the difference survives ("true" is no bool).
 */
class Plain extends String {}
const SCHEMA = yaml.FAILSAFE_SCHEMA.extend({
  implicit: [plainType('tag:pullguard,2025:plain')],
  // Explicitly tagged scalars ("!!bool true") are read the same way.
  explicit: ['bool', 'int', 'float', 'null'].map((name) => plainType(`tag:yaml.org,2002:${name}`)),
})
function plainType(tag: string): yaml.Type {
  return new yaml.Type(tag, { kind: 'scalar', resolve: () => true, construct: (s: string) => new Plain(s) })
}
/** yaml.v3's null spellings (plain only); an empty value arrives as null. */
const NULLS = new Set(['', '~', 'null', 'Null', 'NULL'])
/** Plain booleans of YAML 1.2 core, resolved by yaml.v3 itself. */
const PLAIN_BOOLS = new Map([
  ...['true', 'True', 'TRUE'].map((s) => [s, true] as const),
  ...['false', 'False', 'FALSE'].map((s) => [s, false] as const),
])
/** The YAML 1.1 spellings yaml.v3 still takes for a bool field, quoted or not. */
const COMPAT_BOOLS = new Map([
  ...['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON'].map((s) => [s, true] as const),
  ...['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF'].map((s) => [s, false] as const),
])

class Invalid extends Error {}

function readFile(file: string, text: string): { defaultDocker?: Namespace; docker: Map<string, Namespace> } {
  let doc: unknown
  try {
    // yaml.v3's Unmarshal decodes the first document only.
    doc = yaml.loadAll(text, null, { schema: SCHEMA })[0]
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err)
    throw new SignaturePolicyError('RegistriesDInvalid', file, `parsing ${file}: yaml: ${message}`)
  }
  try {
    const top = mapping(doc, 'docker.registryConfiguration') ?? {}
    const out: { defaultDocker?: Namespace; docker: Map<string, Namespace> } = { docker: new Map() }
    const defaultDocker = top['default-docker']
    if (!isNull(defaultDocker)) out.defaultDocker = namespace(defaultDocker)
    for (const [scope, value] of Object.entries(mapping(top['docker'], 'map[string]docker.registryNamespace') ?? {})) {
      // A null namespace is still defined (yaml.v3 stores the zero value).
      out.docker.set(scope, isNull(value) ? {} : namespace(value))
    }
    return out
  } catch (err) {
    if (err instanceof Invalid) {
      throw new SignaturePolicyError(
        'RegistriesDInvalid',
        file,
        `parsing ${file}: yaml: unmarshal errors: ${err.message}`,
      )
    }
    throw err
  }
}

function namespace(value: unknown): Namespace {
  const fields = mapping(value, 'docker.registryNamespace') ?? {}
  // Every string field is decoded, so a mapping where text belongs fails the file even when unused.
  const [current, deprecated] = ['lookaside', 'sigstore', 'lookaside-staging', 'sigstore-staging'].map((key) =>
    text(fields[key]),
  )
  const lookaside = current || deprecated || ''
  const ns: Namespace = lookaside === '' ? {} : { lookaside }
  const attachments = fields['use-sigstore-attachments']
  if (isNull(attachments)) return ns
  const spelled = typeof attachments === 'string' || attachments instanceof Plain ? String(attachments) : undefined
  const bool =
    spelled === undefined
      ? undefined
      : (COMPAT_BOOLS.get(spelled) ?? (attachments instanceof Plain ? PLAIN_BOOLS.get(spelled) : undefined))
  if (bool === undefined) throw new Invalid(`cannot unmarshal ${describe(attachments)} into bool`)
  return { ...ns, useSigstoreAttachments: bool }
}

/** Absent, an empty value, or a plain null spelling. */
const isNull = (value: unknown): boolean =>
  value === undefined || value === null || (value instanceof Plain && NULLS.has(String(value)))

/** A mapping (undefined for null); anything else is a type error. */
function mapping(value: unknown, goType: string): Record<string, unknown> | undefined {
  if (isNull(value)) return undefined
  if (typeof value === 'object' && !Array.isArray(value) && !(value instanceof Plain)) {
    return value as Record<string, unknown>
  }
  throw new Invalid(`cannot unmarshal ${describe(value)} into ${goType}`)
}

/** A string field: any scalar's text, quoted or not; null is "". */
function text(value: unknown): string {
  if (isNull(value)) return ''
  if (typeof value === 'string' || value instanceof Plain) return String(value)
  throw new Invalid(`cannot unmarshal ${describe(value)} into string`)
}

/** yaml.v3's short tag and value, as its type errors print them. */
function describe(value: unknown): string {
  if (Array.isArray(value)) return '!!seq'
  if (!(value instanceof Plain) && typeof value !== 'string') return '!!map'
  const s = String(value)
  const tag =
    value instanceof Plain && /^[-+]?[0-9]+$/.test(s)
      ? '!!int'
      : value instanceof Plain && PLAIN_BOOLS.has(s)
        ? '!!bool'
        : '!!str'
  return `${tag} \`${s.length > 10 ? `${s.slice(0, 7)}...` : s}\``
}
