/**
 * A pod's imagePullSecrets → the credentials the kubelet tries for each image, in its order.
 *
 * 1. getPullSecretsForPod (pkg/kubelet/kubelet_pods.go): each name in pod order, read from the pod's
 *    namespace; an empty name is skipped; a secret that cannot be read is skipped with a warning. A
 *    name listed twice is read twice, so its credentials are tried twice — we read it once and add it
 *    twice. (We read a few at a time in parallel and keep pod order.)
 * 2. secretsToTrackedDockerConfigs (pkg/credentialprovider/secrets/secrets.go): only type
 *    kubernetes.io/dockerconfigjson with a non-empty ".dockerconfigjson", or kubernetes.io/dockercfg
 *    with a non-empty ".dockercfg", is used; anything else is ignored. A document that does not
 *    parse makes MakeDockerKeyring fail, and with it every pull of the pod (image_manager.go).
 * 3. All secrets go into one BasicDockerKeyring (see keyring.ts), unioned before the node's keyring:
 *    UnionDockerKeyring{pod secrets, node, credential plugins} — each keyring looks up separately,
 *    Docker Hub fallback included, and the results are concatenated.
 */
import { pool } from '../async/pool.js'
import { shareIdentity, type Credential } from '../registry/credential.js'
import {
  decodeGoBase64,
  displayKey,
  parseDockerCfg,
  parseDockerConfigJson,
  type DockerConfigEntry,
  type DockerConfigParse,
} from './docker-config.js'
import { createKeyring, type KeyringEntry } from './keyring.js'
import type { Lookup, SecretObject, SecretSource } from '../kube/sources.js'

export interface SecretProblem {
  secret: string
  kind: 'missing' | 'forbidden' | 'error' | 'wrong-type' | 'unparseable'
  /** Human text naming types, keys and fields; never a value. */
  detail: string
  /** The secret's type, when it was read. */
  type?: string
}

export interface PullKeyring {
  /**
   * Credentials for one image (its normalized name, `docker.io/library/nginx`), in the order the
   * kubelet tries them. An empty username means the runtime pulls anonymously for that attempt
   * (containerd's ParseAuth). Meaningless when `fatal` is set: then the kubelet pulls nothing.
   */
  credentialsFor(imageName: string): Credential[]
  /** Secrets that were skipped or broken, in pod order (once per name). */
  problems: SecretProblem[]
  /** Secret names that loaded and parsed, in pod order (once per name). */
  loaded: string[]
  /** For each loaded secret, the registry keys it holds (as written in it: names, never values). */
  registries: ReadonlyMap<string, string[]>
  /** True when some secret could not be read (forbidden/error): the kubelet might have credentials we don't see. */
  incomplete: boolean
  /** A secret that exists but does not parse: the kubelet fails every pull of the pod. */
  fatal: SecretProblem | undefined
}

export interface LoadPullKeyringOptions {
  signal?: AbortSignal
  /** The node's own credentials, as one keyring; they come after the pod's for every image. */
  extraEntries?: readonly KeyringEntry[]
}

/** The two secret types the kubelet reads pull credentials from, and the data key of each (core/v1 types.go). */
const DOCKER_SECRET_TYPES: Readonly<Record<string, { key: string; parse: (text: string) => DockerConfigParse }>> = {
  'kubernetes.io/dockerconfigjson': { key: '.dockerconfigjson', parse: parseDockerConfigJson },
  'kubernetes.io/dockercfg': { key: '.dockercfg', parse: parseDockerCfg },
}

/**
 * Secret reads in flight at once. A pod spec may list hundreds of names (only the request size
 * bounds it); the kubelet reads them one by one from its cache, and more parallel GETs would only
 * queue at the API server's priority-and-fairness limits while holding the review's time budget.
 */
const MAX_PARALLEL_READS = 8

type Outcome = { entries: KeyringEntry[] } | { problem: SecretProblem }

export async function loadPullKeyring(
  source: SecretSource,
  namespace: string,
  secretNames: readonly string[],
  options: LoadPullKeyringOptions = {},
): Promise<PullKeyring> {
  const names = secretNames.filter((name) => name !== '')
  const unique = [...new Set(names)]
  const found = await pool(unique, { limit: MAX_PARALLEL_READS }, async (name) =>
    outcomeOf(namespace, name, await read(source, namespace, name, options.signal)),
  )
  const outcomes = new Map(unique.map((name, i) => [name, found[i]!]))

  const podEntries: KeyringEntry[] = []
  for (const name of names) {
    const outcome = outcomes.get(name)
    if (outcome !== undefined && 'entries' in outcome) podEntries.push(...outcome.entries)
  }
  const problems: SecretProblem[] = []
  const loaded: string[] = []
  const registries = new Map<string, string[]>()
  for (const name of unique) {
    const outcome = outcomes.get(name)
    if (outcome === undefined) continue
    if ('problem' in outcome) problems.push(outcome.problem)
    else {
      loaded.push(name)
      registries.set(name, [...new Set(outcome.entries.map((e) => displayKey(e.key)))])
    }
  }

  const podKeyring = createKeyring(podEntries)
  const nodeKeyring = createKeyring(options.extraEntries ?? [])

  return {
    // An entry is its own Credential: the same object across reviews while the secret is unchanged,
    // so credentialIdentity's per-object cache keeps working.
    credentialsFor: (imageName) => [...podKeyring(imageName), ...nodeKeyring(imageName)],
    problems,
    loaded,
    registries,
    incomplete: problems.some((p) => p.kind === 'forbidden' || p.kind === 'error'),
    fatal: problems.find((p) => p.kind === 'unparseable'),
  }
}

async function read(
  source: SecretSource,
  namespace: string,
  name: string,
  signal: AbortSignal | undefined,
): Promise<Lookup<SecretObject>> {
  try {
    return await source.getSecret(namespace, name, signal)
  } catch (err) {
    // Sources report outcomes as values; a throw is a bug or an abort, and an abort is the caller's.
    if (signal?.aborted === true) throw signal.reason
    return { kind: 'error', detail: err instanceof Error ? err.message : String(err) }
  }
}

/**
 * Parsed secrets, by the object read. The cluster cache hands out the same frozen object until the
 * secret changes, so a warm review decodes nothing; a changed or deleted secret is a new object or
 * none, and its old parse goes with the old object.
 */
const parsed = new WeakMap<SecretObject, Outcome>()
/**
 * Parsed documents, by the data object that holds them. The cluster cache gives every copy of one
 * pull secret (secret-copying tools put the same one into thousands of namespaces) the same data
 * object, so it is decoded once and its usernames and passwords are held once.
 */
const documents = new WeakMap<
  Readonly<Record<string, string>>,
  { key: string; entries: readonly DockerConfigEntry[] }
>()

function outcomeOf(namespace: string, name: string, lookup: Lookup<SecretObject>): Outcome {
  if (lookup.kind !== 'found' || lookup.object.namespace !== namespace || lookup.object.name !== name)
    return toOutcome(namespace, name, lookup)
  let outcome = parsed.get(lookup.object)
  if (outcome === undefined) {
    outcome = toOutcome(namespace, name, lookup)
    parsed.set(lookup.object, outcome)
  }
  return outcome
}

function toOutcome(namespace: string, name: string, lookup: Lookup<SecretObject>): Outcome {
  const problem = (kind: SecretProblem['kind'], detail: string): Outcome => ({
    problem: { secret: name, kind, detail },
  })
  switch (lookup.kind) {
    case 'missing':
      return problem('missing', `secret ${namespace}/${name} does not exist; the kubelet skips it`)
    case 'forbidden':
      return problem(
        'forbidden',
        `pullguard may not read secret ${namespace}/${name} (${lookup.detail}); the kubelet may still use it`,
      )
    case 'error':
      return problem('error', `secret ${namespace}/${name} could not be read: ${lookup.detail}`)
    case 'found':
      break
  }
  const secret = lookup.object
  const typed = (kind: SecretProblem['kind'], detail: string): Outcome => ({
    problem: { secret: name, kind, detail, type: secret.type },
  })
  const known = Object.hasOwn(DOCKER_SECRET_TYPES, secret.type) ? DOCKER_SECRET_TYPES[secret.type] : undefined
  if (known === undefined) {
    return typed(
      'wrong-type',
      `secret ${namespace}/${name} has type ${JSON.stringify(secret.type)}; the kubelet only uses kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg secrets for pulls`,
    )
  }
  const encoded = Object.hasOwn(secret.data, known.key) ? secret.data[known.key] : undefined
  if (encoded === undefined || encoded === '') {
    return typed(
      'wrong-type',
      `secret ${namespace}/${name} has type ${secret.type} but no ${known.key} data; the kubelet ignores it`,
    )
  }
  let document = documents.get(secret.data)
  if (document?.key !== known.key) {
    const where = `secret ${namespace}/${name} (${known.key})`
    const bytes = decodeGoBase64(encoded, true)
    if (bytes === undefined) return typed('unparseable', `${where} holds data that is not base64`)
    if (bytes.length === 0) {
      return typed(
        'wrong-type',
        `secret ${namespace}/${name} has type ${secret.type} but empty ${known.key} data; the kubelet ignores it`,
      )
    }
    const parsed = known.parse(bytes.toString('utf8'))
    if (!parsed.ok) return typed('unparseable', `${where} does not parse as the kubelet reads it: ${parsed.problem}`)
    document = { key: known.key, entries: parsed.entries }
    documents.set(secret.data, document)
  }
  return {
    entries: document.entries.map((entry) => {
      // join: one flat string (a template literal keeps its pieces, and this one lives as long as the secret).
      const label = ['secret ', namespace, '/', name, ' (key ', JSON.stringify(displayKey(entry.key)), ')'].join('')
      const credential: KeyringEntry = Object.freeze({
        key: entry.key,
        username: entry.username,
        password: entry.password,
        label,
      })
      shareIdentity(credential, entry)
      return credential
    }),
  }
}
