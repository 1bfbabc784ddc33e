/**
 * --node-pools FILE: the cluster's kinds of node, each with the files its nodes pull with. Read
 * and checked at start-up like the flags it stands for: every pool's files are opened once now,
 * so a typo fails the start, not a review.
 *
 *   pools:
 *   - name: gpu
 *     nodeLabels: {cloud.google.com/gke-nodepool: gpu}
 *     taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
 *     runtime: containerd://2.1.4          # else what the pool's nodes report
 *     platforms: [linux/amd64]             # else the pool's nodes'
 *     imagePullCredentialsVerificationPolicy: AlwaysVerify
 *     containerdHostsDir: gpu/certs.d      # each node flag, camelCased; paths relative to FILE
 *   - name: general
 *     fromFlags: true                      # the node files are the command's own flags
 *
 * A pool's files come from ConfigMaps and Secrets mounted beside FILE; only the pool pullguard runs
 * on may take its files from the host (`fromFlags`).
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, join } from 'node:path'
import yaml from 'js-yaml'
import { parsePlatform } from '../policy/platforms.js'
import {
  DEFAULT_POOL,
  DEFAULT_VERIFICATION_POLICY,
  VERIFICATION_POLICIES,
  type KubeletPullSettings,
  type PoolShape,
  type Taint,
  type VerificationPolicy,
} from '../pools/pool.js'
import { parseRuntime } from '../pools/runtime.js'
import type { Platform } from '../registry/index.js'

export { DEFAULT_POOL }
import { ConfigError } from './errors.js'
import { checkedAllowlist } from './kubelet-flags.js'
import type { Env, Picked } from './flags.js'
import { nodeFileSettings, type NodeFileSettings, type NodeFlag } from './node-files.js'

/** One pool as a command opens it: its shape, and the node files its nodes pull with. */
export interface PoolSettings extends PoolShape {
  node: NodeFileSettings
  /** Equal for pools whose node files are the same: they share one set of readers, and their answers. */
  nodeKey: string
}

/** A file of tens of pools is a few KB; anything near this is not a pool file. */
const MAX_POOL_FILE_BYTES = 1 << 20
const MAX_POOLS = 64

/** The pool file's keys for the node flags (camelCased flag names). */
const NODE_KEYS: Readonly<Record<string, NodeFlag>> = {
  nodeDockerConfig: 'node-docker-config',
  imageCredentialProviderConfig: 'image-credential-provider-config',
  imageCredentialProviderBinDir: 'image-credential-provider-bin-dir',
  containerdHostsDir: 'containerd-hosts-dir',
  registriesConf: 'registries-conf',
  registriesConfDir: 'registries-conf-dir',
  shortNameAliases: 'short-name-aliases',
  shortNameMode: 'short-name-mode',
  crioConfig: 'crio-config',
  crioConfigDir: 'crio-config-dir',
  signaturePolicy: 'signature-policy',
  signaturePolicyDir: 'signature-policy-dir',
  registriesD: 'registries-d',
}
/** Values that are not paths. */
const NOT_PATHS: ReadonlySet<string> = new Set(['shortNameMode'])
const SHAPE_KEYS = new Set([
  'name',
  'nodeLabels',
  'taints',
  'runtime',
  'platforms',
  'imagePullCredentialsVerificationPolicy',
  'preloadedImagesVerificationAllowlist',
  'fromFlags',
])

/** What the command's own flags say of the nodes: the one pool without --node-pools, and `fromFlags` pools. */
export interface FlagNodes {
  node: NodeFileSettings
  kubelet: KubeletPullSettings
  platforms: readonly Platform[]
  /** The flags among --platform and the kubelet's that were given (their sources, for errors). */
  given: readonly string[]
}

/** The pools: read from `file`, or the one pool the flags describe. */
export function nodePools(file: Picked, flags: FlagNodes, env: Env): PoolSettings[] {
  if (file.value === undefined)
    return [
      {
        name: DEFAULT_POOL,
        nodeLabels: {},
        taints: [],
        runtime: undefined,
        platforms: flags.platforms,
        kubelet: flags.kubelet,
        node: flags.node,
        nodeKey: FLAGS_KEY,
      },
    ]
  return readPoolFile(file.value, file.source, flags, env)
}

const FLAGS_KEY = 'flags'

function readPoolFile(path: string, flag: string, flags: FlagNodes, env: Env): PoolSettings[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(flag, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  if (text.length > MAX_POOL_FILE_BYTES) throw new ConfigError(flag, `${path} is larger than 1 MiB`)
  let doc: unknown
  try {
    doc = yaml.load(text, { schema: yaml.CORE_SCHEMA })
  } catch (err) {
    throw new ConfigError(flag, `${path} is not YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  const fail = (where: string, problem: string): never => {
    throw new ConfigError(flag, `${path}: ${where}${problem}`)
  }
  if (!isRecord(doc) || !Array.isArray(doc.pools)) return fail('', 'expected a `pools:` list')
  for (const key of Object.keys(doc)) if (key !== 'pools') fail('', `unknown key ${JSON.stringify(key)}`)
  if (doc.pools.length === 0) fail('', '`pools` is empty')
  if (doc.pools.length > MAX_POOLS) fail('', `more than ${MAX_POOLS} pools`)
  const base = dirname(path)
  const names = new Set<string>()
  let fromFlags = 0
  const pools = doc.pools.map((raw, i): PoolSettings => {
    const at = (key?: string): string =>
      `pools[${i}]${isRecord(raw) && typeof raw.name === 'string' ? ` (${raw.name})` : ''}${key === undefined ? '' : `.${key}`}: `
    if (!isRecord(raw)) return fail(at(), 'expected a mapping')
    for (const key of Object.keys(raw))
      if (!SHAPE_KEYS.has(key) && NODE_KEYS[key] === undefined) fail(at(), `unknown key ${JSON.stringify(key)}`)
    const name = raw.name
    if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/.test(name))
      fail(at('name'), 'a pool needs a name of lowercase letters, digits, `-` and `.` (at most 63)')
    if (names.has(name as string)) fail(at('name'), `pool ${JSON.stringify(name)} is given twice`)
    names.add(name as string)
    const nodeLabels = stringMap(raw.nodeLabels, (p) => fail(at('nodeLabels'), p))
    const taints = taintList(raw.taints, (p) => fail(at('taints'), p))
    const runtime = raw.runtime
    if (runtime !== undefined && (typeof runtime !== 'string' || parseRuntime(runtime) === undefined))
      fail(at('runtime'), 'expected a runtime as nodes report it, e.g. containerd://2.1.4 or cri-o://1.33.2')
    const platforms = stringList(raw.platforms, (p) => fail(at('platforms'), p)).map((s) => {
      try {
        return parsePlatform(s)
      } catch (err) {
        return fail(at('platforms'), (err as Error).message)
      }
    })
    // A pool `fromFlags` takes the flags' kubelet settings and platforms where it names none.
    const inherits = raw.fromFlags === true
    const ownKubelet =
      raw.imagePullCredentialsVerificationPolicy !== undefined || raw.preloadedImagesVerificationAllowlist !== undefined
    const kubelet = inherits && !ownKubelet ? flags.kubelet : kubeletSettings(raw, (key, p) => fail(at(key), p))
    const nodeKeys = Object.keys(raw).filter((k) => NODE_KEYS[k] !== undefined)
    let node: NodeFileSettings
    let nodeKey: string
    if (raw.fromFlags !== undefined && typeof raw.fromFlags !== 'boolean')
      fail(at('fromFlags'), 'expected true or false')
    if (raw.fromFlags === true) {
      if (nodeKeys.length > 0)
        fail(at(nodeKeys[0]), 'a pool `fromFlags` takes its node files from the command’s flags, not the pool file')
      fromFlags++
      node = flags.node
      nodeKey = FLAGS_KEY
    } else {
      const values: Record<string, string> = {}
      for (const key of nodeKeys) {
        const v = raw[key]
        if (typeof v !== 'string' || v === '') fail(at(key), 'expected a path')
        values[key] = NOT_PATHS.has(key) || isAbsolute(v as string) ? (v as string) : join(base, v as string)
      }
      const pick = (f: NodeFlag): Picked => {
        const key = Object.keys(NODE_KEYS).find((k) => NODE_KEYS[k] === f)!
        return { value: values[key], source: `${flag} ${path}: ${at(key).slice(0, -2)}` }
      }
      node = nodeFileSettings(pick, env)
      nodeKey = JSON.stringify(
        Object.keys(values)
          .sort()
          .map((k) => [k, values[k]]),
      )
    }
    const kind = runtimeKind(node)
    const declared = typeof runtime === 'string' ? parseRuntime(runtime)!.name : undefined
    if (kind !== undefined && declared !== undefined && declared !== kind)
      fail(at('runtime'), `is ${declared}, but the pool's files are ${kind}'s`)
    return {
      name: name as string,
      nodeLabels,
      taints,
      runtime: runtime as string | undefined,
      platforms: inherits && platforms.length === 0 ? flags.platforms : platforms,
      kubelet,
      node,
      nodeKey,
    }
  })
  if (fromFlags > 1) fail('', 'only one pool can take its node files from the flags (`fromFlags`)')
  // The flags that describe the nodes beside their files speak for the `fromFlags` pool only.
  if (fromFlags === 0 && flags.given.length > 0)
    throw new ConfigError(
      flags.given[0]!,
      `describes the nodes the flags stand for, and no pool of ${path} is \`fromFlags\`: set it per pool in the file`,
    )
  // A pool whose labels include an earlier pool's could never have a node.
  for (const [j, later] of pools.entries())
    for (const earlier of pools.slice(0, j))
      if (
        Object.keys(earlier.nodeLabels).length > 0 &&
        Object.entries(earlier.nodeLabels).every(([k, v]) => later.nodeLabels[k] === v)
      )
        fail(
          `pools[${j}] (${later.name}): `,
          `its nodeLabels include those of pool ${earlier.name}, listed before it, which takes every node it would`,
        )
  // A pool after one that takes every node could never have one.
  const catchAll = pools.findIndex((p) => Object.keys(p.nodeLabels).length === 0)
  if (catchAll >= 0 && catchAll < pools.length - 1)
    fail(
      `pools[${catchAll}] (${pools[catchAll]!.name}): `,
      'has no nodeLabels, so it takes every node: only the last pool may',
    )
  return pools
}

function kubeletSettings(
  raw: Record<string, unknown>,
  fail: (key: string, problem: string) => never,
): KubeletPullSettings {
  const policy = raw.imagePullCredentialsVerificationPolicy
  if (policy !== undefined && !(VERIFICATION_POLICIES as readonly unknown[]).includes(policy))
    fail('imagePullCredentialsVerificationPolicy', `expected one of ${VERIFICATION_POLICIES.join(', ')}`)
  const verificationPolicy = (policy as VerificationPolicy | undefined) ?? DEFAULT_VERIFICATION_POLICY
  const list = stringList(raw.preloadedImagesVerificationAllowlist, (p) =>
    fail('preloadedImagesVerificationAllowlist', p),
  )
  try {
    return { verificationPolicy, allowlist: checkedAllowlist(list, verificationPolicy, '') }
  } catch (err) {
    return fail('preloadedImagesVerificationAllowlist', (err as Error).message.replace(/^: /, ''))
  }
}

/** The runtime a pool's files belong to, when they say. */
function runtimeKind(node: NodeFileSettings): string | undefined {
  if (node.mirrors?.kind === 'containerd') return 'containerd'
  if (node.mirrors?.kind === 'registries-conf') return 'cri-o'
  return undefined
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function stringMap(v: unknown, fail: (problem: string) => never): Record<string, string> {
  if (v === undefined || v === null) return {}
  if (!isRecord(v)) return fail('expected a mapping of label to value')
  const out: Record<string, string> = {}
  for (const [k, value] of Object.entries(v)) {
    if (typeof value !== 'string') fail(`the value of ${JSON.stringify(k)} must be a string (quote it)`)
    out[k] = value as string
  }
  return out
}

function stringList(v: unknown, fail: (problem: string) => never): string[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) return fail('expected a list of strings')
  return v as string[]
}

const EFFECTS: ReadonlySet<string> = new Set(['NoSchedule', 'PreferNoSchedule', 'NoExecute'])

function taintList(v: unknown, fail: (problem: string) => never): Taint[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) return fail('expected a list of {key, value, effect}')
  return v.map((t, i) => {
    if (!isRecord(t) || typeof t.key !== 'string' || t.key === '') return fail(`[${i}] needs a key`)
    if (t.value !== undefined && typeof t.value !== 'string') fail(`[${i}].value must be a string`)
    if (typeof t.effect !== 'string' || !EFFECTS.has(t.effect))
      fail(`[${i}].effect must be NoSchedule, PreferNoSchedule or NoExecute`)
    return {
      key: t.key,
      ...(t.value === undefined ? {} : { value: t.value as string }),
      effect: t.effect as Taint['effect'],
    }
  })
}
