/**
 * Where the nodes' runtime pulls each image from, for the registry client: containerd's host
 * directory (`--containerd-hosts-dir`) or CRI-O's registries.conf (`--registries-conf`), read at
 * start, kept in memory (no disk access per check) and read again when they change. A bad new
 * version keeps the last good one and says so; the first read failing is a start-up error.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Logger } from 'pino'
import { Reloading } from '../reload/reloading.js'
import type { ImageReference } from '../reference/index.js'
import type { Endpoint, Router } from '../registry/endpoint.js'
import { MirrorConfigError } from './errors.js'
import { HostFiles } from './host-files.js'
import { hostDirCandidates, hostsFor, registryHosts, type HostsFile, type RegistryHost } from './hosts-toml.js'
import { mergeRegistriesConf, parseRegistriesConfFile, pullPlan, type RegistriesConfFile } from './registries-conf.js'
import { isShortName, resolveShortName, type ShortNameMode, type ShortNameResolution } from './short-names.js'

/** A certs.d directory holds a directory per registry; more than this is not one. */
const MAX_HOST_DIRS = 1024
const MAX_FILE_BYTES = 256 * 1024

export type MirrorSource =
  | { kind: 'containerd'; dir: string }
  | {
      kind: 'registries-conf'
      file: string
      /** The drop-in folder (registries.conf.d); default: beside `file`. */
      dropInDir?: string
      /** containers-image's aliases cache (short-name-aliases.conf), where mounted. */
      aliasesFile?: string
      /** CRI-O's short_name_mode; default enforcing (CRI-O 1.34 and later). */
      shortNameMode?: ShortNameMode
    }

/** registries.conf.d beside the main file, as in the standard layout (/etc/containers). */
export function dropInDirOf(source: Extract<MirrorSource, { kind: 'registries-conf' }>): string {
  return source.dropInDir ?? join(dirname(source.file), 'registries.conf.d')
}

/** A registries.conf rule that refuses the image. */
export interface BlockedBy {
  file: string
  prefix: string
  /** Not `blocked = true`: a location the runtime cannot rewrite names to, so every pull under the rule fails. */
  problem?: string
  /** `containerd`: a hosts.toml whose CA or client file does not load (`prefix` is the registry). */
  runtime?: 'containerd'
}

interface Snapshot {
  endpoints(ref: ImageReference): readonly Endpoint[]
  blocked(ref: ImageReference): BlockedBy | undefined
  shortName(input: string): ShortNameResolution
  /** What the log says about the read: host directories, rules, problems. */
  summary: Record<string, unknown>
  /** Files whose change means a new read. */
  files: string[]
}

export class MirrorRoutes implements Router {
  readonly #files: Reloading<Snapshot>

  /** Reads the configuration once; a directory or file that cannot be read is a MirrorConfigError. */
  constructor(source: MirrorSource, logger: Logger, options: { watch?: boolean } = {}) {
    this.#files = new Reloading({
      read: () => read(source),
      // The host directories are listed from the disk at each look, so a new one (or one a failed read left out) is watched too.
      files: (last) => watchedFiles(source, last),
      logger,
      what: 'registry mirrors configuration',
      summary: (s) => s.summary,
      onRead: (s) => {
        for (const problem of (s.summary.problems as string[] | undefined) ?? [])
          logger.warn(
            { problem },
            'part of the registry mirrors configuration cannot be used; the runtime cannot use it either',
          )
      },
      ...(options.watch === undefined ? {} : { watch: options.watch }),
    })
  }

  get generation(): number {
    return this.#files.generation
  }

  endpoints(ref: ImageReference): readonly Endpoint[] {
    return this.#files.current.endpoints(ref)
  }

  blocked(ref: ImageReference): BlockedBy | undefined {
    return this.#files.current.blocked(ref)
  }

  /** What CRI-O tries for an image as the pod spec writes it; containerd nodes: `qualified` (docker.io expansion). */
  shortName(input: string): ShortNameResolution {
    return this.#files.current.shortName(input)
  }

  reload(): void {
    this.#files.reload()
  }

  close(): void {
    this.#files.close()
  }
}

/** What a change to means a new read: the file, or the directory, its host directories and their files, and the CA and client files last read. */
function watchedFiles(source: MirrorSource, last: Snapshot | undefined): string[] {
  if (source.kind === 'registries-conf') {
    const dir = dropInDirOf(source)
    const files = [source.file, dir, ...dropIns(dir), ...(source.aliasesFile === undefined ? [] : [source.aliasesFile])]
    return [...files, ...(last?.files.filter((f) => !files.includes(f)) ?? [])]
  }
  const files = [source.dir]
  try {
    for (const name of readdirSync(source.dir).sort()) {
      if (name.startsWith('..')) continue
      const dir = join(source.dir, name)
      files.push(dir)
      try {
        for (const f of readdirSync(dir).sort()) if (isHostFile(f)) files.push(join(dir, f))
      } catch {
        // not a directory
      }
    }
  } catch {
    // the directory is gone: its own fingerprint says so
  }
  return [...files, ...(last?.files.filter((f) => !files.includes(f)) ?? [])]
}

/** hosts.toml, and the docker-style files containerd reads without one (loadCertFiles). */
function isHostFile(name: string): boolean {
  return name === 'hosts.toml' || name.endsWith('.crt') || name.endsWith('.cert') || name.endsWith('.key')
}

function read(source: MirrorSource): Snapshot {
  return source.kind === 'containerd' ? readHostsDir(source.dir) : readRegistriesConf(source)
}

function readText(path: string, file: string): string {
  const size = statSync(path).size
  if (size > MAX_FILE_BYTES)
    throw new MirrorConfigError(
      file.endsWith('hosts.toml') ? 'HostsFileInvalid' : 'RegistriesConfInvalid',
      file,
      `larger than ${MAX_FILE_BYTES} bytes`,
    )
  return readFileSync(path, 'utf8')
}

function errno(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message
}

/** containerd's certs.d: every host directory read now, so each check is a lookup. */
function readHostsDir(root: string): Snapshot {
  let names: string[]
  try {
    names = readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() || (d.isSymbolicLink() && isDir(join(root, d.name))))
      .map((d) => d.name)
      .filter((n) => !n.startsWith('..'))
  } catch (err) {
    throw new MirrorConfigError('HostsDirUnreadable', root, `cannot read the directory: ${errno(err)}`)
  }
  if (names.length > MAX_HOST_DIRS)
    throw new MirrorConfigError('HostsDirUnreadable', root, `holds more than ${MAX_HOST_DIRS} host directories`)
  const dirs = new Map<string, HostsFile>()
  const files: string[] = [root]
  for (const name of names.sort()) {
    const dir = join(root, name)
    let entries: string[]
    try {
      entries = readdirSync(dir)
    } catch (err) {
      throw new MirrorConfigError('HostsDirUnreadable', dir, `cannot read the directory: ${errno(err)}`)
    }
    files.push(dir, ...entries.filter(isHostFile).map((f) => join(dir, f)))
    const text = entries.includes('hosts.toml') ? readText(join(dir, 'hosts.toml'), join(dir, 'hosts.toml')) : undefined
    dirs.set(name, { text, files: entries.filter((f) => f !== 'hosts.toml'), dir })
  }
  // Each registry's hosts are worked out once per read: a registry with no directory of its own uses _default or its upstream.
  const resolved = new Map<string, Resolved>()
  const problems: string[] = []
  const hostFiles = new HostFiles((path) => readText(path, path), root)
  const resolve = (registry: string): Resolved => {
    let r = resolved.get(registry)
    if (r === undefined) {
      const dirName = hostDirCandidates(registry).find((n) => dirs.has(n))
      const found = dirName === undefined ? undefined : dirs.get(dirName)
      const parsed = registryHosts(registry, found)
      if (parsed.problem !== undefined && !problems.includes(parsed.problem.message))
        problems.push(parsed.problem.message)
      // containerd's ConfigureHosts returns the first file that does not load, for the whole
      // registry: the resolver gets no host, mirror or server, and the pull fails.
      const failed = parsed.hosts.map((h) => hostFiles.problemOf(h)).find((p) => p !== undefined)
      const file = found === undefined ? root : found.text === undefined ? found.dir : join(found.dir, 'hosts.toml')
      r = { hosts: parsed.hosts, file, ...(failed === undefined ? {} : { problem: failed }) }
      // Registries come from pod specs: remember a bounded number (the rest are worked out again, cheaply).
      if (resolved.size < 2 * MAX_HOST_DIRS) resolved.set(registry, r)
    }
    return r
  }
  // Read every directory now, so a broken hosts.toml, CA or client file is reported at the read, not at the first pod.
  for (const name of dirs.keys()) {
    const registry = name === '_default' ? '_default' : registryOfDir(name)
    const r = resolve(registry)
    if (r.problem !== undefined)
      problems.push(
        `${r.problem}: containerd fails every pull from ${name === '_default' ? 'a registry without a directory of its own' : registry} (${r.file})`,
      )
  }
  problems.push(...hostFiles.doubts)
  files.push(...hostFiles.paths)
  return {
    endpoints(ref) {
      const r = resolve(ref.domain)
      if (r.problem !== undefined) return []
      const byDigest = ref.digest !== undefined
      return hostsFor(r.hosts, byDigest).map((h) => containerdEndpoint(h, ref, hostFiles))
    },
    // Not a rule that blocks: a file that does not load, so the pull fails on every node (see resolve).
    blocked(ref) {
      const r = resolve(ref.domain)
      return r.problem === undefined
        ? undefined
        : { file: r.file, prefix: ref.domain, problem: r.problem, runtime: 'containerd' }
    },
    shortName: () => ({ kind: 'qualified' }),
    summary: {
      containerdHostsDir: root,
      hostDirectories: [...dirs.keys()],
      ...(problems.length > 0 ? { problems } : {}),
    },
    files,
  }
}

/** A registry's hosts as containerd configures them, or the file that keeps it from configuring any. */
interface Resolved {
  hosts: RegistryHost[]
  /** The registry's hosts.toml (or its directory, without one): what a message names. */
  file: string
  /** A CA or client file that does not load: every pull from the registry fails. */
  problem?: string
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/** `host_port_` back to `host:port` (the reverse of containerd's hostDirectory). */
function registryOfDir(name: string): string {
  const m = /^(.*)_(\d+)_$/.exec(name)
  return m === null ? name : `${m[1]}:${m[2]}`
}

/**
 * One of containerd's hosts as the client asks it. `skip_verify`, `ca`, `client` and `dial_timeout`
 * are per host. A host named with `http://` is plain HTTP, unless it also has TLS settings
 * (`skip_verify`, `ca` or `client`, as the registry's own localhost upstream has) and a port other
 * than 80: then containerd tries HTTPS first and falls back to HTTP by its own rule (ConfigureHosts,
 * NewHTTPFallback; plain-fallback.ts). Only called for a registry none of whose files fails on the
 * nodes too; a file pullguard cannot judge (host-files.ts) is left out.
 */
function containerdEndpoint(h: RegistryHost, ref: ImageReference, files: HostFiles): Endpoint {
  // containerd: no port, or one other than 80, makes the protocol ambiguous (net.SplitHostPort gives "" without one).
  const fallback = h.scheme === 'http' && h.tlsConfigured && h.port !== '80'
  const loaded = h.caFiles.map((f) => files.ca(f)).flatMap((r) => (r.ok ? [r.value] : []))
  const caPem = loaded.length === 0 ? undefined : loaded.join('\n')
  const clientCertificates = h.clientPairs.map((p) => files.client(p)).flatMap((r) => (r.ok ? [r.value] : []))
  const tlsSettings = {
    verify: h.skipVerify !== true,
    ...(caPem === undefined ? {} : { caPem }),
    ...(clientCertificates.length === 0 ? {} : { clientCertificates }),
    ...(h.dialTimeoutMs === undefined ? {} : { dialTimeoutMs: h.dialTimeoutMs }),
  }
  // containerd gives a host its own client for TLS settings or a dial timeout (ConfigureHosts); a
  // plain-HTTP host's TLS settings are never used, its dial timeout is.
  const tls = fallback
    ? { ...tlsSettings, plainFallback: { rule: 'containerd' as const, portWritten: h.port !== undefined } }
    : h.tlsConfigured || h.dialTimeoutMs !== undefined
      ? tlsSettings
      : undefined
  const proxied = h.host !== ref.domain && !(ref.domain === 'docker.io' && h.host === 'registry-1.docker.io')
  const headers = Object.fromEntries(Object.entries(h.header).map(([k, v]) => [k.toLowerCase(), v.join(', ')]))
  return {
    host: h.host,
    ...(h.scheme === 'http' && !fallback ? { scheme: 'http' as const } : {}),
    root: h.path.replace(/\/+$/, ''),
    repository: ref.path,
    ...(proxied ? { query: `ns=${encodeURIComponent(ref.domain)}` } : {}),
    ...(tls === undefined ? {} : { tls }),
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
    // containerd's CRI plugin hands the kubelet's credentials to every host it asks.
    credentials: true,
    label: `${h.scheme === 'http' && !fallback ? 'http://' : ''}${h.host}${h.path === '/v2' ? '' : h.path}`,
  }
}

/** The drop-ins of `dir` in reading order (only `*.conf`, no subfolders); none when it is missing. */
function dropIns(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.name.endsWith('.conf') && (d.isFile() || (d.isSymbolicLink() && !isDir(join(dir, d.name)))))
      .map((d) => join(dir, d.name))
      .sort()
  } catch {
    return []
  }
}

function readConfFile(path: string): RegistriesConfFile {
  let text: string
  try {
    text = readText(path, path)
  } catch (err) {
    if (err instanceof MirrorConfigError) throw err
    throw new MirrorConfigError('RegistriesConfInvalid', path, `cannot read the file: ${errno(err)}`)
  }
  return parseRegistriesConfFile(path, text)
}

/**
 * containers-image's aliases cache: its table, or the problem that makes every short name fail
 * (a missing file is an empty table).
 */
function readAliasesCache(
  path: string | undefined,
): { aliases: Map<string, { target: string; origin: string }> } | { problem: string } | undefined {
  if (path === undefined) return undefined
  let text: string
  try {
    text = readText(path, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { aliases: new Map() }
    return { problem: `loading short-name aliases config file ${path}: ${(err as Error).message}` }
  }
  try {
    const parsed = parseRegistriesConfFile(path, text)
    return { aliases: new Map([...parsed.aliases].map(([name, target]) => [name, { target, origin: path }])) }
  } catch (err) {
    return { problem: `loading short-name aliases config file ${path}: ${(err as MirrorConfigError).problem}` }
  }
}

/** CRI-O's registries.conf and its drop-ins: rules read now; each check finds its rule in memory. */
function readRegistriesConf(source: Extract<MirrorSource, { kind: 'registries-conf' }>): Snapshot {
  const { file } = source
  const dir = dropInDirOf(source)
  try {
    if (!statSync(dir).isDirectory())
      throw new MirrorConfigError('RegistriesConfInvalid', dir, 'is not a directory (registries.conf.d)')
  } catch (err) {
    if (err instanceof MirrorConfigError) throw err
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new MirrorConfigError('RegistriesConfInvalid', dir, `cannot read the directory: ${errno(err)}`)
  }
  const drops = dropIns(dir)
  const conf = mergeRegistriesConf([readConfFile(file), ...drops.map(readConfFile)])
  const { rules } = conf
  const cache = readAliasesCache(source.aliasesFile)
  const mode = source.shortNameMode ?? 'enforcing'
  return {
    endpoints(ref) {
      const plan = pullPlan(rules, ref.name, ref.digest !== undefined)
      if (plan.blocked) return []
      return plan.sources.map((source) => {
        const slash = source.location.indexOf('/')
        const domain = slash < 0 ? source.location : source.location.slice(0, slash)
        const host = domain === 'docker.io' ? 'registry-1.docker.io' : domain
        const repository = slash < 0 ? '' : source.location.slice(slash + 1)
        return {
          host,
          root: '/v2',
          repository,
          ...(source.insecure ? { tls: { verify: false, plainFallback: true } } : {}),
          // CRI-O gives the kubelet's credentials only where the pull goes to the image's own
          // registry; a mirror or a rewritten location on another one gets the node's auth file.
          credentials: domain === ref.domain,
          // Two sources may share a host (a cache path and the location): the label names the repository.
          label: `${host}/${repository}`,
        }
      })
    },
    blocked(ref) {
      const plan = pullPlan(rules, ref.name, ref.digest !== undefined)
      if (!plan.blocked) return undefined
      const by = { file: plan.rule.file ?? file, prefix: plan.rule.prefix }
      return plan.problem === undefined ? by : { ...by, problem: plan.problem }
    },
    shortName(input) {
      // An aliases cache that does not load fails every short name (ResolveShortNameAlias errs), nothing else.
      if (cache !== undefined && 'problem' in cache && isShortName(input))
        return { kind: 'unresolvable', written: input, problem: cache.problem }
      return resolveShortName(input, conf, cache !== undefined && 'aliases' in cache ? cache.aliases : undefined, mode)
    },
    summary: {
      registriesConf: file,
      dropIns: drops,
      rules: rules.length,
      blocked: rules.filter((r) => r.blocked).map((r) => r.prefix),
      shortNameMode: mode,
      unqualifiedSearchRegistries: conf.search,
      aliases: conf.aliases.size + (cache !== undefined && 'aliases' in cache ? cache.aliases.size : 0),
      ...(cache !== undefined && 'problem' in cache ? { problems: [cache.problem] } : {}),
    },
    files: [file, dir, ...drops, ...(source.aliasesFile === undefined ? [] : [source.aliasesFile])],
  }
}
