/**
 * The kubelet's credential provider config (`--image-credential-provider-config`), read as the
 * kubelet reads it (pkg/credentialprovider/plugin/config.go, v1.37):
 * 1. a file (JSON or YAML, whatever its name), or a directory whose `*.json`, `*.yaml`, `*.yml`
 *    files are merged in byte order; only the first YAML document of a file counts;
 * 2. decoded strictly: unknown or wrong-case fields, duplicate keys and wrong types are errors,
 *    durations are Go duration strings, `tokenAttributes` exists only in the v1 schema;
 * 3. validated (validate.ts), then every provider's binary must be an executable file in the bin dir.
 * Any failure is a ProviderConfigError whose message is one line, as the kubelet words it where it can.
 */
import { accessSync, constants, readdirSync, readFileSync, statSync, type Dirent } from 'node:fs'
import { extname, join } from 'node:path'
import { loadAll } from 'js-yaml'
import { parseGoDuration } from '../go/duration.js'
import type { ProviderSpec, TokenAttributes } from './spec.js'
import { validateProviders } from './validate.js'

export { EXEC_API_VERSIONS } from './validate.js'

export const CONFIG_GROUP = 'kubelet.config.k8s.io'
const CONFIG_VERSIONS = ['v1', 'v1beta1', 'v1alpha1']
/** A config is a few providers; a megabyte is not a config. */
const MAX_CONFIG_BYTES = 1024 * 1024

export interface ProviderConfig {
  /** Providers in config order, each with the path of its binary. */
  providers: Array<ProviderSpec & { binary: string }>
  /** The files read, in order (for reload). */
  files: string[]
}

export class ProviderConfigError extends Error {
  readonly code = 'InvalidProviderConfig'
  override name = 'ProviderConfigError'
}

/** Reads, decodes and validates the config, and checks every binary (RegisterCredentialProviderPlugins). */
export function loadProviderConfig(configPath: string, binDir: string): ProviderConfig {
  try {
    if (!statSync(binDir).isDirectory())
      throw new ProviderConfigError(`plugin binary directory ${binDir} is not a directory`)
  } catch (err) {
    if (err instanceof ProviderConfigError) throw err
    throw new ProviderConfigError(`plugin binary directory ${binDir} did not exist`)
  }
  const files = configFiles(configPath)
  const providers: ProviderSpec[] = []
  for (const file of files) {
    let text: string
    try {
      const size = statSync(file).size
      if (size > MAX_CONFIG_BYTES)
        throw new ProviderConfigError(
          `unable to read file ${JSON.stringify(file)}: larger than ${MAX_CONFIG_BYTES} bytes`,
        )
      text = readFileSync(file, 'utf8')
    } catch (err) {
      if (err instanceof ProviderConfigError) throw err
      throw new ProviderConfigError(
        `unable to read file ${JSON.stringify(file)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      )
    }
    for (const p of decodeProviderConfig(text, file)) {
      if (providers.some((q) => q.name === p.name))
        throw new ProviderConfigError(
          `duplicate provider name ${JSON.stringify(p.name)} found in configuration file(s)`,
        )
      providers.push(p)
    }
  }
  const errors = validateProviders(providers)
  if (errors.length > 0)
    throw new ProviderConfigError(
      `failed to validate credential provider config: ${errors.length === 1 ? errors[0] : `[${errors.join(', ')}]`}`,
    )
  return {
    files,
    providers: providers.map((p) => {
      const binary = join(binDir, p.name)
      try {
        if (!statSync(binary).isFile()) throw new Error('not a file')
        accessSync(binary, constants.X_OK)
      } catch {
        throw new ProviderConfigError(
          `plugin binary executable ${binary} did not exist or is not executable (provider ${JSON.stringify(p.name)})`,
        )
      }
      return { ...p, binary }
    }),
  }
}

function configFiles(configPath: string): string[] {
  if (configPath === '') throw new ProviderConfigError('credential provider config path is empty')
  let isDirectory: boolean
  try {
    isDirectory = statSync(configPath).isDirectory()
  } catch (err) {
    throw new ProviderConfigError(
      `unable to access path ${JSON.stringify(configPath)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    )
  }
  if (!isDirectory) return [configPath]
  let entries: Dirent[]
  try {
    entries = readdirSync(configPath, { withFileTypes: true })
  } catch (err) {
    throw new ProviderConfigError(
      `unable to read directory ${JSON.stringify(configPath)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    )
  }
  const files = entries
    .filter((e) => !e.isDirectory() && ['.json', '.yaml', '.yml'].includes(extname(e.name)))
    .map((e) => join(configPath, e.name))
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  if (files.length === 0)
    throw new ProviderConfigError(`no configuration files found in directory ${JSON.stringify(configPath)}`)
  return files
}

/** One file's providers, decoded strictly; `source` names the file in errors. */
export function decodeProviderConfig(text: string, source: string): ProviderSpec[] {
  const fail = (problem: string): never => {
    throw new ProviderConfigError(`error decoding config ${JSON.stringify(source)}: ${problem}`)
  }
  let doc: unknown
  try {
    // JSON is YAML; duplicate keys are an error (js-yaml's default), and only the first document counts.
    doc = loadAll(text)[0]
  } catch (err) {
    fail(`strict decoding error: ${((err as Error).message.split('\n')[0] ?? '').trim()}`)
  }
  if (!isObject(doc)) return fail(`Object 'Kind' is missing`)
  if (doc['kind'] === undefined) fail(`Object 'Kind' is missing`)
  if (doc['apiVersion'] === undefined) fail(`Object 'apiVersion' is missing`)
  const [group, version] = String(doc['apiVersion']).split('/')
  if (
    doc['kind'] !== 'CredentialProviderConfig' ||
    group !== CONFIG_GROUP ||
    !CONFIG_VERSIONS.includes(version ?? '')
  ) {
    fail(
      `no kind ${JSON.stringify(String(doc['kind']))} is registered for version ${JSON.stringify(String(doc['apiVersion']))}`,
    )
  }
  strictFields(doc, '', ['apiVersion', 'kind', 'providers'], fail)
  const list = doc['providers']
  if (list === null || list === undefined) return []
  if (!Array.isArray(list)) return fail('providers must be a list')
  return list.map((raw, i) => decodeProvider(raw, `providers[${i}]`, version === 'v1', fail))
}

function decodeProvider(raw: unknown, at: string, v1: boolean, fail: (p: string) => never): ProviderSpec {
  if (!isObject(raw)) return fail(`${at} must be an object`)
  strictFields(
    raw,
    at,
    ['name', 'matchImages', 'defaultCacheDuration', 'apiVersion', 'args', 'env', ...(v1 ? ['tokenAttributes'] : [])],
    fail,
  )
  const duration = raw['defaultCacheDuration']
  let defaultCacheDurationMs: number | undefined
  if (duration !== undefined && duration !== null) {
    if (typeof duration !== 'string')
      fail(
        `json: cannot unmarshal ${typeof duration} into Go struct field CredentialProvider.providers.defaultCacheDuration of type string`,
      )
    const parsed = parseGoDuration(duration as string)
    if (!parsed.ok) return fail(parsed.error)
    defaultCacheDurationMs = parsed.ms
  }
  const env = optionalList(raw['env'], `${at}.env`, fail).map((e, j) => {
    if (!isObject(e)) return fail(`${at}.env[${j}] must be an object`)
    strictFields(e, `${at}.env[${j}]`, ['name', 'value'], fail)
    return { name: str(e['name'], `${at}.env[${j}].name`, fail), value: str(e['value'], `${at}.env[${j}].value`, fail) }
  })
  return {
    name: str(raw['name'], `${at}.name`, fail),
    matchImages: strings(raw['matchImages'], `${at}.matchImages`, fail),
    defaultCacheDurationMs,
    apiVersion: str(raw['apiVersion'], `${at}.apiVersion`, fail),
    args: strings(raw['args'], `${at}.args`, fail),
    env,
    tokenAttributes: decodeTokenAttributes(raw['tokenAttributes'], `${at}.tokenAttributes`, fail),
  }
}

function decodeTokenAttributes(raw: unknown, at: string, fail: (p: string) => never): TokenAttributes | undefined {
  if (raw === undefined || raw === null) return undefined
  if (!isObject(raw)) return fail(`${at} must be an object`)
  strictFields(
    raw,
    at,
    [
      'serviceAccountTokenAudience',
      'cacheType',
      'requireServiceAccount',
      'requiredServiceAccountAnnotationKeys',
      'optionalServiceAccountAnnotationKeys',
    ],
    fail,
  )
  const require = raw['requireServiceAccount']
  if (require !== undefined && require !== null && typeof require !== 'boolean')
    fail(`${at}.requireServiceAccount must be true or false`)
  return {
    serviceAccountTokenAudience: str(raw['serviceAccountTokenAudience'], `${at}.serviceAccountTokenAudience`, fail),
    cacheType: str(raw['cacheType'], `${at}.cacheType`, fail),
    requireServiceAccount: typeof require === 'boolean' ? require : undefined,
    requiredServiceAccountAnnotationKeys: strings(
      raw['requiredServiceAccountAnnotationKeys'],
      `${at}.requiredServiceAccountAnnotationKeys`,
      fail,
    ),
    optionalServiceAccountAnnotationKeys: strings(
      raw['optionalServiceAccountAnnotationKeys'],
      `${at}.optionalServiceAccountAnnotationKeys`,
      fail,
    ),
  }
}

function strictFields(
  o: Record<string, unknown>,
  at: string,
  allowed: readonly string[],
  fail: (p: string) => never,
): void {
  for (const key of Object.keys(o))
    if (!allowed.includes(key))
      fail(`strict decoding error: unknown field ${JSON.stringify(at === '' ? key : `${at}.${key}`)}`)
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A missing or null string field decodes to "" (Go's zero value). */
function str(v: unknown, at: string, fail: (p: string) => never): string {
  if (v === undefined || v === null) return ''
  if (typeof v !== 'string')
    return fail(`json: cannot unmarshal ${Array.isArray(v) ? 'array' : typeof v} into ${at} of type string`)
  return v
}

function optionalList(v: unknown, at: string, fail: (p: string) => never): unknown[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) return fail(`json: cannot unmarshal ${typeof v} into ${at} of type []`)
  return v
}

function strings(v: unknown, at: string, fail: (p: string) => never): string[] {
  return optionalList(v, at, fail).map((s, i) => str(s, `${at}[${i}]`, fail))
}
