/**
 * containerd's registry host configuration (`config_path`, the certs.d layout: DIR/<host>/hosts.toml),
 * read as containerd 2.x reads it (core/remotes/docker/config/hosts.go), so pullguard asks the hosts
 * a node's containerd would ask, in the same order:
 * - the directory: `host_port_` for a host with a port, then `host`, then `_default`;
 * - `[host."…"]` tables in file order, then `server` (or, without one, the registry's own upstream:
 *   registry-1.docker.io for docker.io), each with its capabilities (all three when none are given);
 * - a server without a path gets `/v2`; with one, `/v2` is appended unless `override_path`;
 * - `skip_verify`, `ca` and `client` (paths relative to the host's directory, joined as Go's
 *   filepath.Join does), `header`;
 * - `client`: one file holding certificate and key, a list of such files, or a list of
 *   [certificate, key] pairs, in any mix (parseHostConfig's accepted types);
 * - `dial_timeout` (containerd 2.1 and later; 2.0 ignores the key): a Go duration, the host's
 *   net.Dialer Timeout; a value Go cannot parse makes the whole file unparseable;
 * - an unparseable hosts.toml falls back, as in containerd (loadHostDir), to the directory's
 *   docker-style files: `*.crt` CAs and `*.cert` client certificates with their `*.key` (loadCertFiles),
 *   and so does a directory without a hosts.toml.
 * Pure: the caller reads the files (and fails the whole registry when one cannot be loaded, as
 * ConfigureHosts does); nothing here touches the disk.
 */
import { isAbsolute, join } from 'node:path'
import { TomlError, parse } from 'smol-toml'
import { parseGoDuration } from '../go/duration.js'
import { MirrorConfigError } from './errors.js'

export type Capability = 'pull' | 'resolve' | 'push'

/** A client certificate for mTLS: without `keyFile`, the key is in `certFile` too (containerd reads it twice). */
export interface ClientPair {
  certFile: string
  keyFile?: string
}

export interface RegistryHost {
  scheme: 'https' | 'http'
  /** host[:port] */
  host: string
  /** The API root: /v2 unless override_path gave another. */
  path: string
  capabilities: ReadonlySet<Capability>
  skipVerify: boolean | undefined
  /** CA files, absolute. */
  caFiles: string[]
  /** Client certificates, absolute, in the order given. */
  clientPairs: ClientPair[]
  /**
   * containerd's explicitTLSFromHost: `ca` written (even an empty list), a client pair, or
   * `skip_verify` written. It gives the host its own TLS settings, and an http:// host HTTPS first.
   */
  tlsConfigured: boolean
  /** `dial_timeout` in milliseconds (negative: every dial fails at once, as Go's Dialer; 0: no limit of its own). */
  dialTimeoutMs?: number
  header: Record<string, string[]>
  /** Where it came from, for the decision log and messages. */
  origin: 'host' | 'server' | 'upstream'
  /** The port as written (URL parsing drops a default one, which containerd's HTTP fallback rule looks at). */
  port?: string
}

const ALL: ReadonlySet<Capability> = new Set(['pull', 'resolve', 'push'])

/** containerd's hostDirectory: ":port" becomes "_port_" (a colon is not allowed in every filesystem). */
export function hostDirectory(host: string): string {
  const i = host.lastIndexOf(':')
  return i > 0 ? `${host.slice(0, i)}_${host.slice(i + 1)}_` : host
}

/** The directories tried for a registry host, in order (containerd's hostPaths). */
export function hostDirCandidates(host: string): string[] {
  const escaped = hostDirectory(host)
  return [...(escaped !== host ? [escaped] : []), host, '_default']
}

function isLocalhost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : (host.split(':')[0] ?? '')
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name)
}

/** What containerd asks when nothing names a server: the registry itself (docker.io's real host). */
export function upstreamHost(registry: string, base: Partial<RegistryHost> = {}): RegistryHost {
  let scheme: 'https' | 'http' = 'https'
  let skipVerify = base.skipVerify
  let host = registry
  if (registry === 'docker.io') host = 'registry-1.docker.io'
  else if (isLocalhost(registry)) {
    // containerd: plain HTTP on a localhost port other than 443 (it falls back from HTTPS), no TLS
    // verification for localhost except on port 80.
    const port = registry.slice(registry.lastIndexOf(':') + 1)
    const hasPort = registry.lastIndexOf(':') > registry.lastIndexOf(']')
    scheme = !hasPort || port === '443' ? 'https' : 'http'
    if (!hasPort || port !== '80') skipVerify = true
  }
  const port = /:(\d+)$/.exec(registry)?.[1]
  const caFiles = base.caFiles ?? []
  const clientPairs = base.clientPairs ?? []
  return {
    scheme,
    host,
    path: '/v2',
    capabilities: ALL,
    skipVerify,
    caFiles,
    clientPairs,
    tlsConfigured:
      base.tlsConfigured === true || skipVerify !== undefined || caFiles.length > 0 || clientPairs.length > 0,
    ...(base.dialTimeoutMs === undefined ? {} : { dialTimeoutMs: base.dialTimeoutMs }),
    header: base.header ?? {},
    origin: 'upstream',
    ...(port === undefined ? {} : { port }),
  }
}

function stringList(value: unknown, what: string): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[]
  throw new Error(`${what} must be a string or a list of strings`)
}

/** containerd's makeAbsPath: absolute as written, or joined to the host's directory (and cleaned, as filepath.Join). */
function absolute(path: string, baseDir: string): string {
  return isAbsolute(path) ? path : join(baseDir, path)
}

/**
 * `client` as parseHostConfig takes it: a string (certificate and key in one file), or a list
 * whose items are each such a string or a [certificate, key] pair. An empty list is no client
 * certificate at all (containerd appends nothing, so the host gets no TLS settings from it).
 */
export function parseClient(value: unknown, baseDir: string): ClientPair[] {
  if (typeof value === 'string') return [{ certFile: absolute(value, baseDir) }]
  if (!Array.isArray(value)) throw new Error('client must be a file, a list of files, or a list of [cert, key] pairs')
  return value.map((item: unknown) => {
    if (typeof item === 'string') return { certFile: absolute(item, baseDir) }
    if (!Array.isArray(item)) throw new Error('client must be a file, a list of files, or a list of [cert, key] pairs')
    if (!item.every((p) => typeof p === 'string')) throw new Error('a client pair must hold file names')
    if (item.length !== 2) throw new Error(`invalid pair ${JSON.stringify(item)} for "client": [cert, key]`)
    return { certFile: absolute(item[0] as string, baseDir), keyFile: absolute(item[1] as string, baseDir) }
  })
}

/** `dial_timeout` in milliseconds: a Go duration, parsed as time.ParseDuration; "" is not set. */
export function parseDialTimeout(value: unknown): number | undefined {
  if (value === undefined || value === '') return undefined
  if (typeof value !== 'string') throw new Error('dial_timeout must be a string (a Go duration such as "5s")')
  const parsed = parseGoDuration(value)
  if (!parsed.ok) throw new Error(`dial_timeout: ${parsed.error}`)
  return parsed.ms
}

/** One `[host."…"]` table or the file's top level, as containerd's parseHostConfig. */
function hostConfig(
  server: string,
  table: Record<string, unknown>,
  baseDir: string,
  origin: 'host' | 'server',
): RegistryHost {
  const withScheme = server.startsWith('http') ? server : `https://${server}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new Error(`server ${server} is not a URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`server ${server}: only http and https`)
  const overridePath = table['override_path'] === true
  let path = url.pathname === '/' || url.pathname === '' ? '' : url.pathname.replace(/\/+$/, '').replace(/\/{2,}/g, '/')
  if (path === '') path = overridePath ? '' : '/v2'
  else if (!path.endsWith('/v2') && !overridePath) path = `${path}/v2`
  const caps = table['capabilities']
  let capabilities: ReadonlySet<Capability> = ALL
  if (caps !== undefined) {
    const list = stringList(caps, 'capabilities').map((c) => c.toLowerCase())
    for (const c of list)
      if (c !== 'pull' && c !== 'resolve' && c !== 'push') throw new Error(`unknown capability ${c}`)
    if (list.length > 0) capabilities = new Set(list as Capability[])
  }
  const skip = table['skip_verify']
  if (skip !== undefined && typeof skip !== 'boolean') throw new Error('skip_verify must be true or false')
  const ca = table['ca']
  const headerTable = table['header']
  const header: Record<string, string[]> = {}
  if (headerTable !== undefined) {
    if (typeof headerTable !== 'object' || headerTable === null || Array.isArray(headerTable))
      throw new Error('header must be a table')
    for (const [k, v] of Object.entries(headerTable)) header[k] = stringList(v, `header ${k}`)
  }
  const port = /^[a-z]+:\/\/(?:\[[^\]]*\]|[^/:]*)(?::(\d+))?/i.exec(withScheme)?.[1]
  const caFiles = ca === undefined ? [] : stringList(ca, 'ca').map((p) => absolute(p, baseDir))
  const client = table['client'] === undefined ? [] : parseClient(table['client'], baseDir)
  const dialMs = parseDialTimeout(table['dial_timeout'])
  return {
    ...(port === undefined ? {} : { port }),
    scheme: url.protocol === 'http:' ? 'http' : 'https',
    host: url.host,
    path,
    capabilities,
    skipVerify: skip,
    caFiles,
    clientPairs: client,
    tlsConfigured: ca !== undefined || client.length > 0 || skip !== undefined,
    ...(dialMs === undefined ? {} : { dialTimeoutMs: dialMs }),
    header,
    origin,
  }
}

export interface HostsFile {
  /** `hosts.toml`'s text, if the directory has one. */
  text: string | undefined
  /** The directory's other file names (for the docker-style *.crt fallback). */
  files: readonly string[]
  dir: string
}

/**
 * The hosts containerd would use for `registry` from one host directory (or none found: undefined),
 * and, when hosts.toml could not be read, why (containerd logs it and uses the *.crt files).
 */
export function registryHosts(
  registry: string,
  found: HostsFile | undefined,
): { hosts: RegistryHost[]; problem?: MirrorConfigError } {
  if (found === undefined) return { hosts: [upstreamHost(registry)] }
  const names = [...found.files].sort()
  const crtFallback = (): RegistryHost[] => [
    upstreamHost(registry, {
      caFiles: names.filter((f) => f.endsWith('.crt')).map((f) => absolute(f, found.dir)),
      // loadCertFiles: a `.cert` with the `.key` of the same name, or alone (the key is then in it).
      clientPairs: names
        .filter((f) => f.endsWith('.cert'))
        .map((f) => {
          const key = `${f.slice(0, -'.cert'.length)}.key`
          return {
            certFile: absolute(f, found.dir),
            ...(names.includes(key) ? { keyFile: absolute(key, found.dir) } : {}),
          }
        }),
    }),
  ]
  if (found.text === undefined || found.text === '') return { hosts: crtFallback() }
  try {
    return { hosts: parseHostsToml(registry, found.text, found.dir) }
  } catch (err) {
    const problem = err instanceof TomlError ? (err.message.split('\n')[0] ?? 'invalid TOML') : (err as Error).message
    return {
      hosts: crtFallback(),
      problem: new MirrorConfigError('HostsFileInvalid', `${found.dir}/hosts.toml`, problem),
    }
  }
}

/** The parse proper; throws on what containerd refuses (its caller falls back). */
export function parseHostsToml(registry: string, text: string, baseDir: string): RegistryHost[] {
  const doc = parse(text) as Record<string, unknown>
  const tables = doc['host']
  const hosts: RegistryHost[] = []
  if (tables !== undefined) {
    if (typeof tables !== 'object' || tables === null || Array.isArray(tables))
      throw new Error('host must be a table of tables')
    // File order: the parser keeps the tables in the order they appear (host names are never
    // integer-like keys, which JavaScript would reorder).
    for (const [name, table] of Object.entries(tables as Record<string, unknown>)) {
      if (typeof table !== 'object' || table === null || Array.isArray(table))
        throw new Error(`host ${name} must be a table`)
      hosts.push(hostConfig(name, table as Record<string, unknown>, baseDir, 'host'))
    }
  }
  const server = doc['server']
  if (server !== undefined && typeof server !== 'string') throw new Error('server must be a string')
  if (server === undefined || server === '') {
    // No server: the registry itself, with every capability (containerd replaces the root's).
    const root = hostConfig('https://placeholder.invalid', doc, baseDir, 'server')
    hosts.push(
      upstreamHost(registry, {
        skipVerify: root.skipVerify,
        caFiles: root.caFiles,
        clientPairs: root.clientPairs,
        tlsConfigured: root.tlsConfigured,
        ...(root.dialTimeoutMs === undefined ? {} : { dialTimeoutMs: root.dialTimeoutMs }),
        header: root.header,
      }),
    )
  } else hosts.push(hostConfig(server, doc, baseDir, 'server'))
  return hosts
}

/**
 * The hosts a pull asks, in order: resolving a tag needs `resolve` (and `pull`); a digest only
 * `pull`. containerd tries each in turn; a connection error, a 404 or another 4xx/5xx moves on to
 * the next, and the first success is the answer.
 */
export function hostsFor(hosts: readonly RegistryHost[], byDigest: boolean): RegistryHost[] {
  return hosts.filter((h) => h.capabilities.has('pull') && (byDigest || h.capabilities.has('resolve')))
}
