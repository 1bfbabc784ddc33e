/**
 * The fix for an image that will not pull, built in one place from its outcome and what the
 * request names: the object (kind, name, where its pod spec sits), the pull secrets its pods use
 * and what became of each, its service account and that account's list. The webhook's denials and
 * warnings, `pullguard check` and `pullguard diagnose` all take their fixes from here, so they
 * cannot disagree.
 *
 * Two voices, differing only where the situation does: `admission` speaks to someone about to
 * apply an object (the fix goes into their manifest, or is a command to run before applying it
 * again); `diagnose` to someone whose pod already exists and is stuck (the fix patches the live
 * workload, and the pod is retried).
 *
 * Commands are ready to paste: `-n` always, values quoted where the shell needs it, and USER and
 * PASSWORD the only placeholders, besides VALUE for an annotation whose value only a credential
 * provider's documentation knows. A command always ends its line.
 */
import { keyApplies } from '../credentials/keyring.js'
import type { SecretProblem } from '../credentials/pull-secrets.js'
import type { ProviderSkip } from '../providers/providers.js'
import { pullability, type ImageOutcome } from './outcome.js'
import { formatPlatform, type Platform } from './platforms.js'

export type Voice = 'admission' | 'diagnose'

/** What became of one name in the pods' imagePullSecrets. */
export type SecretState =
  | { name: string; state: 'found'; registries: string[] }
  | { name: string; state: SecretProblem['kind']; detail: string; type?: string }

export interface FixTarget {
  voice: Voice
  namespace: string
  /** kubectl's resource name (`deployment`, `cronjob`, `pod`, …) and the object's name. */
  resource: string
  name: string
  /** Where the pod spec sits in the object, as a person finds it: `spec.template.spec`. */
  specField: string
  /** Keys to the pod spec for a strategic merge patch of the live object; undefined: not patchable in place. */
  patchPath: readonly string[] | undefined
  /** The pull secrets the pods use, in order, with what became of each. */
  secrets: readonly SecretState[]
  /**
   * Whether the pods' list comes from their service account: `yes` (they list none, so the
   * ServiceAccount admission plugin gives them the account's), `maybe` (a Pod whose list equals
   * its account's: copied there by that plugin, or written so), `no`.
   */
  fromServiceAccount: 'yes' | 'maybe' | 'no'
  /** The pods' service account; its list when it could be read; `missing` when it does not exist. */
  serviceAccount: { name: string; imagePullSecrets: readonly string[] | undefined; missing?: boolean }
  /**
   * The registry each listed secret that a fix writes (missing, of another type) is written for:
   * the first image that needs it. A kubectl-made secret holds one server, so other registries'
   * images get a secret of their own (claimListedSecrets).
   */
  secretServers?: ReadonlyMap<string, string>
  /** Diagnose: the stuck pod. */
  pod?: { name: string; bare: boolean; platform: Platform | undefined }
}

export interface FixStep {
  text: string
  /** Ready to paste except USER/PASSWORD; ends the line. */
  command?: string
}

export interface Fix {
  /** Do them all, in order. */
  steps: FixStep[]
  /** Another way that replaces the last step. */
  alternatives: FixStep[]
  /** The same in a few words, for a one-line warning. */
  short: string
}

type Checked = Extract<ImageOutcome, { kind: 'checked' }>

/** The name pullguard proposes for a new pull secret for `server` (an image's registry domain). */
export function pullSecretNameFor(server: string): string {
  return (
    'pull-' +
    server
      .replace(/[^a-z0-9]+/gi, '-')
      .replace(/^-+|-+$/g, '')
      .toLowerCase()
  ).slice(0, 253)
}

/** A word as the shell takes it: bare when it is plain, else single-quoted. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`
}

/**
 * `kubectl create secret docker-registry NAME …` for `server`. Docker Hub is kubectl's default
 * (`https://index.docker.io/v1/`, which the kubelet matches to docker.io images), so no flag.
 */
export function createSecretCommand(name: string, server: string, namespace: string): string {
  const dockerServer = server === 'docker.io' ? '' : ` --docker-server=${shellQuote(server)}`
  return `kubectl create secret docker-registry ${shellQuote(name)}${dockerServer} --docker-username=USER --docker-password=PASSWORD -n ${shellQuote(namespace)}`
}

/** The same secret written over an existing one of a docker type (create or update, in place). */
export function updateSecretCommand(name: string, server: string, namespace: string): string {
  return `${createSecretCommand(name, server, namespace)} --dry-run=client -o yaml | kubectl apply -f -`
}

/** A secret's type cannot change: one of another type is deleted and made again. */
function replaceSecretCommand(name: string, server: string, namespace: string): string {
  return `kubectl delete secret ${shellQuote(name)} -n ${shellQuote(namespace)} && ${createSecretCommand(name, server, namespace)}`
}

const DOCKER_TYPES: ReadonlySet<string> = new Set(['kubernetes.io/dockerconfigjson'])

function repository(o: Checked): string {
  return `${o.ref.domain}/${o.ref.path}`
}

function platforms(list: readonly Platform[]): string {
  return list.map(formatPlatform).join(', ')
}

function quoted(names: readonly string[]): string {
  return names.map((n) => `"${n}"`).join(', ')
}

function object(t: FixTarget): string {
  return `${t.resource}/${t.name}`
}

/** The fix for one outcome, or undefined when there is nothing to fix (pullable, exempt, not verified). */
export function fixFor(o: ImageOutcome, t: FixTarget): Fix | undefined {
  if (pullability(o) !== 'not-pullable') return undefined
  if (o.kind === 'exempt') return undefined
  if (o.kind === 'invalid') return imageFix(o, t, 'correct the image reference', 'correct the image reference')
  if (o.kind === 'metadata-host')
    return imageFix(o, t, "use the image's real registry", "use the image's real registry")
  if (o.kind === 'blocked' && o.runtime === 'containerd')
    return imageFix(
      o,
      t,
      `have the cluster's operators fix ${o.file} (each ca and client file it names must be there and load), or use an image from another registry`,
      "fix the registry's hosts.toml on the nodes",
    )
  if (o.kind === 'blocked' && o.problem !== undefined)
    return imageFix(
      o,
      t,
      `have the cluster's operators correct the location of the rule for "${o.prefix}" in ${o.file}, or use an image from another registry`,
      'use an image from another registry',
    )
  if (o.kind === 'blocked')
    return imageFix(
      o,
      t,
      `use an image from a registry the nodes allow (or ask the cluster's operators about the rule for "${o.prefix}" in ${o.file})`,
      'use an image from an allowed registry',
    )
  if (o.kind === 'broken-secret') return brokenSecretFix(o, t)
  if (o.kind === 'short-name') return shortNameFix(o, t)
  if (o.kind === 'signature-refused')
    return imageFix(
      o,
      t,
      `use an image from a registry the signature policy accepts (${o.finding.file} rejects every image under scope "${o.finding.scope}"), or ask the cluster's operators to change that scope`,
      'use an image from a registry the signature policy accepts',
    )
  if (o.result.code === 'Exists' && o.signature?.verdict === 'rejected') return signatureFix(o, t)
  if (o.result.code === 'Exists' && o.schema1?.verdict === 'refused') return schema1Fix(o, t)
  if (o.use.neverPulled === true && o.neverPull?.kind === 'refused' && o.result.code !== 'AccessDenied')
    if (o.result.code !== 'RepositoryNotFoundOrDenied')
      return imageFix(
        o,
        t,
        `push the image to its registry so the kubelet can pull and verify it (or use imagePullPolicy IfNotPresent), or have the nodes' operators list it in the kubelet's preloadedImagesVerificationAllowlist (NeverVerifyAllowlistedImages)`,
        'push the image, or allowlist it on the nodes',
      )
  switch (o.result.code) {
    case 'TagNotFound':
      return tagFix(o, t)
    case 'DigestNotFound':
      return imageFix(
        o,
        t,
        `use a digest that exists in ${repository(o)} (this one was deleted or never pushed)`,
        'use a digest that exists',
      )
    case 'RepositoryNotFound':
      return repositoryFix(o, t)
    case 'Exists':
      return platformFix(o, t)
    case 'AccessDenied':
    case 'RepositoryNotFoundOrDenied':
      return annotationSkips(o).length > 0 ? annotationFix(o, t) : credentialFix(o, t)
    default:
      return undefined
  }
}

/**
 * A short name CRI-O will not resolve: the name written out in full, or (for the nodes' operators)
 * an alias in a registries.conf.d drop-in, which wins in every mode.
 */
function shortNameFix(o: Extract<ImageOutcome, { kind: 'short-name' }>, t: FixTarget): Fix {
  const r = o.resolution
  if (r.kind === 'unresolvable')
    return imageFix(
      o,
      t,
      `write the image with its registry (registry/repository:tag), or have the nodes' operators give "${r.written}" an alias or set unqualified-search-registries in a registries.conf.d drop-in`,
      'write the image with its registry',
    )
  const names = r.candidates.map((c) => c.canonical)
  const aliases = r.candidates.map((c) => `"${r.written}" = "${c.name}"`)
  return imageFix(
    o,
    t,
    `write the image with its registry: ${names.join(' or ')}, whichever is meant; or have the nodes' operators add the alias under [aliases] in a drop-in in /etc/containers/registries.conf.d/, one of: ${aliases.join(' | ')}`,
    `write the image with its registry (${names.join(' or ')})`,
  )
}

/**
 * Signatures the nodes' policy refuses: sign the manifest the pod pulls with a key the policy
 * trusts, where the runtime reads signatures; or, when registries.d has it read none, that first.
 */
function signatureFix(o: Checked, t: FixTarget): Fix {
  const f = o.signature!
  const image = `${o.ref.name}@${f.digest ?? o.ref.reference}`
  if (f.attachmentsOff !== undefined)
    return imageFix(
      o,
      t,
      `have the cluster's operators set use-sigstore-attachments: true for ${f.attachmentsOff} in the nodes' registries.d (without it every image under ${f.file}'s sigstoreSigned requirement is refused), or use an image the policy does not require a signature for`,
      'the nodes read no sigstore signatures for this repository',
    )
  // Nodes pull an index's platform manifests, and each needs its own signature.
  const what = f.index === true ? `every platform manifest of ${image}` : image
  const cosign = `cosign sign${f.index === true ? ' --recursive' : ''} --key <that private key> ${image}`
  return imageFix(
    o,
    t,
    `sign ${what} with a key ${f.file} trusts for scope "${f.scope}", with the identity it requires (${cosign}), or use an image signed so`,
    'sign the image with a key the signature policy trusts',
  )
}

/**
 * A schema 1 manifest on containerd 2.1+: the same image written again as OCI (skopeo converts a
 * schema 1 manifest when it copies; containerd's own advice is "rebuild the image as schema 2 or
 * OCI"), then used by the digest the copy got.
 */
function schema1Fix(o: Checked, t: FixTarget): Fix {
  const image = o.ref.canonical
  const copy = `skopeo copy --format oci docker://${image} docker://${image}`
  const steps: FixStep[] = [
    {
      text: `push ${image} again as an OCI (or Docker schema 2) image, for instance with skopeo, which converts it`,
      command: copy,
    },
  ]
  const last = imageFix(o, t, 'or use an image built as OCI or Docker schema 2', 're-push the image as OCI or schema 2')
  return { steps, alternatives: last.steps, short: `re-push as OCI: ${copy}` }
}

/** What the container had before an UPDATE changed it, as words, or ''. */
function before(o: ImageOutcome): string {
  const previous = o.use.previous
  return previous === undefined ? '' : `; before this change it was ${previous}`
}

/** A fix that is a different image: in the manifest (admission) or on the live workload (diagnose). */
function imageFix(o: ImageOutcome, t: FixTarget, text: string, short: string): Fix {
  if (t.voice === 'admission') return { steps: [{ text: text + before(o) }], alternatives: [], short }
  return {
    steps: [{ text: `${text}, then change container "${o.use.container}" in ${where(t)}` }],
    alternatives: [],
    short,
  }
}

function where(t: FixTarget): string {
  return t.patchPath === undefined && t.resource !== 'pod'
    ? `what creates ${object(t)} (its pod template cannot be changed in place)`
    : object(t)
}

function tagFix(o: Checked, t: FixTarget): Fix {
  const s = o.suggestions
  const tag = o.ref.reference
  const previous = previousTag(o)
  const was =
    previous === undefined
      ? ''
      : o.previousTagExists === false
        ? `; its tag before this change, ${previous}, is gone too`
        : `; before this change it was ${previous}`
  if (s === undefined)
    return {
      steps: [
        {
          text: `push tag "${tag}" to ${repository(o)}, or use a tag that exists (pullguard could not list its tags)${was}`,
        },
      ],
      alternatives: [],
      short: 'push that tag or use one that exists',
    }
  if (s.length === 0)
    return {
      steps: [
        { text: `no existing tag of ${repository(o)} is near "${tag}": push that tag, or pick one that exists${was}` },
      ],
      alternatives: [],
      short: 'push that tag or use one that exists',
    }
  const nearest = `existing tags nearest to "${tag}": ${s.join(', ')}`
  if (t.voice === 'admission')
    return {
      steps: [{ text: nearest + was }],
      alternatives: [],
      short: `try ${s.join(', ')}${previous === undefined ? '' : o.previousTagExists === false ? '' : `; it was ${previous}`}`,
    }
  return {
    steps: [{ text: nearest }, setImageStep(o, t, withTag(o, s[0]!))],
    alternatives: [],
    short: `try ${s.join(', ')}`,
  }
}

/**
 * A repository that does not exist: the nearest the registry's catalog lists, written into the
 * image with its tag or digest kept, and the command or field that changes it; where the catalog
 * cannot be read, what to check.
 */
function repositoryFix(o: Checked, t: FixTarget): Fix {
  const s = o.repositorySuggestions ?? []
  const host = o.ref.registryHost
  if (s.length === 0) {
    const why =
      o.catalogRefused === true
        ? `${host} does not list its repositories to these credentials`
        : o.repositorySuggestions === undefined
          ? `pullguard could not read ${host}'s catalog`
          : `no repository of ${host} is near "${o.ref.path}"`
    const text = `check the image name for typos: ${host} has no repository ${o.ref.path} (${why})`
    if (t.voice === 'admission')
      return {
        steps: [{ text: `${text}${before(o)}` }],
        alternatives: [],
        short: 'check the image name',
      }
    return {
      steps: [{ text }, setImageStep(o, t, 'IMAGE', 'set the image that exists')],
      alternatives: [],
      short: 'check the image name',
    }
  }
  const images = s.map((path) => withRepository(o, path))
  const nearest = `repositories of ${host} nearest to "${o.ref.path}": ${s.join(', ')}`
  if (t.voice === 'admission')
    return {
      steps: [{ text: `${nearest}: use ${images[0]}${before(o)}` }],
      alternatives: [],
      short: `try ${images[0]}`,
    }
  return { steps: [{ text: nearest }, setImageStep(o, t, images[0]!)], alternatives: [], short: `try ${images[0]}` }
}

/** The image as written, in another repository of its registry, its tag or digest kept. */
function withRepository(o: Checked, path: string): string {
  const at = o.ref.digest === undefined ? (o.ref.tag === undefined ? '' : `:${o.ref.tag}`) : `@${o.ref.digest}`
  const written = o.use.image
  // Keep the user's spelling of the registry (`nginx` has none; `registry.example.com:5000/…` has one).
  const prefix = written.startsWith(`${o.ref.registryHost}/`) || written.startsWith(`${o.ref.domain}/`)
  return prefix ? `${written.slice(0, written.indexOf('/'))}/${path}${at}` : `${o.ref.domain}/${path}${at}`
}

function previousTag(o: Checked): string | undefined {
  const previous = o.use.previous
  if (previous === undefined) return undefined
  const at = previous.lastIndexOf(':')
  const slash = previous.lastIndexOf('/')
  if (at <= slash || previous.includes('@')) return previous
  return previous.slice(0, at) === o.use.image.slice(0, o.use.image.lastIndexOf(':'))
    ? previous.slice(at + 1)
    : previous
}

/** Resources whose container images `kubectl set image` changes in place. */
const SET_IMAGE: ReadonlySet<string> = new Set([
  'pod',
  'deployment',
  'statefulset',
  'daemonset',
  'replicaset',
  'replicationcontroller',
  'cronjob',
])

function setImageStep(o: ImageOutcome, t: FixTarget, image: string, text = 'use the nearest one'): FixStep {
  if (SET_IMAGE.has(t.resource))
    return {
      text,
      command: `kubectl set image ${object(t)} -n ${shellQuote(t.namespace)} ${shellQuote(`${o.use.container}=${image}`)}`,
    }
  return { text: `change container "${o.use.container}" to ${image} in ${where(t)}` }
}

/** The image as written, with another tag (keeps the user's spelling: `nginx`, not `docker.io/library/nginx`). */
function withTag(o: Checked, tag: string): string {
  const written = o.use.image
  const old = o.ref.tag
  if (old !== undefined && o.ref.digest === undefined && written.endsWith(`:${old}`))
    return `${written.slice(0, -old.length - 1)}:${tag}`
  return `${repository(o)}:${tag}`
}

function platformFix(o: Checked, t: FixTarget): Fix | undefined {
  const fit = o.platform
  if (fit?.verdict !== 'none') return undefined
  const publish: FixStep = { text: `publish ${o.use.image} for ${platforms(fit.missing)} (a multi-platform build)` }
  const short = `publish it for ${platforms(fit.missing)}`
  // Other nodes the image can run on: the cluster's (admission), or any the image has (diagnose: the pod is bound).
  const target =
    t.voice === 'admission' ? fit.elsewhere?.[0] : fit.available.find((p) => p.os === (t.pod?.platform?.os ?? p.os))
  if (target === undefined) return { steps: [publish], alternatives: [], short }
  const selector = { 'kubernetes.io/os': target.os, 'kubernetes.io/arch': target.architecture }
  const label = `kubernetes.io/os: ${target.os}, kubernetes.io/arch: ${target.architecture}`
  if (t.voice === 'admission') {
    return {
      steps: [publish],
      alternatives: [
        {
          text: `run it on the cluster's ${formatPlatform(target)} nodes, which the image supports: set ${t.specField}.nodeSelector to ${label} (and drop node affinity that excludes them)`,
        },
      ],
      short: `${short}, or select ${formatPlatform(target)} nodes`,
    }
  }
  const alternative: FixStep =
    t.patchPath === undefined
      ? {
          text: `schedule the pod onto ${formatPlatform(target)} nodes: set nodeSelector ${label} in the pod template of ${where(t)} and re-create it`,
        }
      : {
          text: `schedule the pod onto ${formatPlatform(target)} nodes, which the image supports`,
          command: `kubectl patch ${object(t)} -n ${shellQuote(t.namespace)} -p ${shellQuote(patchJson(t.patchPath, { nodeSelector: selector }))}`,
        }
  return { steps: [publish], alternatives: [alternative], short: `${short}, or select ${formatPlatform(target)} nodes` }
}

/** A registry for a secret command where the reference did not parse: its first part if it looks like a host. */
function registryOf(o: ImageOutcome): string {
  if (o.kind === 'checked') return o.ref.domain
  const first = o.use.image.split('/')[0] ?? ''
  return o.use.image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')
    ? first
    : 'docker.io'
}

function brokenSecretFix(o: Extract<ImageOutcome, { kind: 'broken-secret' }>, t: FixTarget): Fix {
  const name = o.problem.secret
  const server = o.server ?? registryOf(o)
  const ns = t.namespace
  const state = t.secrets.find((s) => s.name === name)
  const type = state !== undefined && state.state !== 'found' ? state.type : undefined
  const inPlace = type === undefined || DOCKER_TYPES.has(type)
  const others = (o.servers ?? []).filter((s) => s !== server)
  const text =
    others.length === 0
      ? `write secret "${name}" again with valid content`
      : `write secret "${name}" again with valid content for ${server} (the pods also pull from ${others.join(', ')}: if "${name}" held credentials for ${others.length === 1 ? 'it' : 'them'}, give each its own secret too)`
  return {
    steps: [
      { text, command: inPlace ? updateSecretCommand(name, server, ns) : replaceSecretCommand(name, server, ns) },
    ],
    alternatives: [{ text: `remove "${name}" from ${listField(t)}` }],
    short: `write secret "${name}" again (kubectl create secret docker-registry) or stop listing it`,
  }
}

/** Where the pods' imagePullSecrets are written. */
function listField(t: FixTarget): string {
  if (t.fromServiceAccount === 'yes') return `the imagePullSecrets of service account "${t.serviceAccount.name}"`
  return t.voice === 'admission' ? `${t.specField}.imagePullSecrets` : `the imagePullSecrets of ${where(t)}`
}

type Found = Extract<SecretState, { state: 'found' }>

/** The pods' secrets that were tried for this image (labels are `secret ns/name (key "…")`). */
function triedSecrets(o: Checked, secrets: readonly SecretState[], namespace: string): Found[] {
  return secrets.filter(
    (s): s is Found =>
      s.state === 'found' && o.tried.some((label) => label.startsWith(`secret ${namespace}/${s.name} (`)),
  )
}

/** Registries a secret holds besides this image's (as the kubelet matches keys): writing it again with one server would lose them. */
function otherRegistries(o: Checked, secret: Found): string[] {
  return secret.registries.filter((key) => !keyApplies(key, o.ref.name))
}

/**
 * Whether an outcome's fix adds a new secret, so where the pods take secrets from (their service
 * account's list) matters: only then is the account worth reading.
 */
export function addsSecret(
  o: ImageOutcome,
  secrets: readonly SecretState[],
  namespace: string,
  claims?: ReadonlyMap<string, string>,
): boolean {
  if (!isCredentialRefusal(o) || annotationSkips(o).length > 0) return false
  const tried = triedSecrets(o, secrets, namespace)
  if (tried.length > 0) return otherRegistries(o, tried[0]!).length > 0
  return !secrets.some(
    (s) =>
      (s.state === 'missing' || s.state === 'wrong-type') && (claims?.get(s.name) ?? o.ref.domain) === o.ref.domain,
  )
}

function isCredentialRefusal(o: ImageOutcome): o is Checked {
  return (
    o.kind === 'checked' &&
    pullability(o) === 'not-pullable' &&
    (o.result.code === 'AccessDenied' || o.result.code === 'RepositoryNotFoundOrDenied')
  )
}

/** Which registry each listed secret a fix would write is written for: the first image, in order, that would write it. */
export function claimListedSecrets(
  outcomes: readonly ImageOutcome[],
  secrets: readonly SecretState[],
  namespace: string,
): Map<string, string> {
  const claims = new Map<string, string>()
  for (const o of outcomes) {
    if (!isCredentialRefusal(o) || annotationSkips(o).length > 0 || triedSecrets(o, secrets, namespace).length > 0)
      continue
    const server = o.ref.domain
    const free = (s: SecretState): boolean => (claims.get(s.name) ?? server) === server
    const chosen =
      secrets.find((s) => s.state === 'missing' && free(s)) ?? secrets.find((s) => s.state === 'wrong-type' && free(s))
    if (chosen !== undefined) claims.set(chosen.name, server)
  }
  return claims
}

/** Docker Hub's and others' "does not exist or is denied": the name is worth a look before any credential. */
function nameFirst(o: Checked): FixStep[] {
  return o.result.code === 'RepositoryNotFoundOrDenied'
    ? [
        {
          text: `check the image name first (${o.ref.registryHost} answers the same for a repository that does not exist)`,
        },
      ]
    : []
}

type AnnotationSkip = Extract<ProviderSkip, { reason: 'RequiredAnnotationMissing' }>

function annotationSkips(o: ImageOutcome): AnnotationSkip[] {
  if (o.kind !== 'checked') return []
  return (o.providerSkips ?? []).filter((s): s is AnnotationSkip => s.reason === 'RequiredAnnotationMissing')
}

/** `"a.io/role"`, `"a.io/role" and "a.io/region"`. */
export function annotationKeys(keys: readonly string[]): string {
  const q = keys.map((k) => `"${k}"`)
  return q.length <= 1 ? (q[0] ?? '') : `${q.slice(0, -1).join(', ')} and ${q[q.length - 1]}`
}

/**
 * Refused, and a plugin matching the image was not run because the pods' service account lacks
 * annotations its config requires (kubelet plugin.go, getServiceAccountData): the annotations on
 * the account. Their values are the provider's to define (an IAM role ARN, a client id), hence
 * VALUE. The kubelet reads the account at every pull attempt, so a stuck pod needs only its next
 * retry. Several such plugins: any one may do, so the others are alternatives.
 */
function annotationFix(o: Checked, t: FixTarget): Fix {
  const [skip, ...others] = annotationSkips(o)
  const retry: FixStep[] =
    t.pod === undefined
      ? []
      : [
          t.pod.bare
            ? { text: "the kubelet reads the account again at the pod's next pull retry (up to 5 minutes apart)" }
            : {
                text: "the kubelet reads the account again at the pod's next pull retry (up to 5 minutes apart); to retry at once",
                command: `kubectl delete pod ${shellQuote(t.pod.name)} -n ${shellQuote(t.namespace)}`,
              },
        ]
  return {
    steps: [...nameFirst(o), annotateStep(skip!, t), ...retry],
    alternatives: [
      ...others.map((s) => annotateStep(s, t)),
      { text: `give the pods a pull secret for ${o.ref.registryHost} instead` },
    ],
    short: `annotate service account "${skip!.serviceAccount}" with ${annotationKeys(skip!.missing)}`,
  }
}

function annotateStep(s: AnnotationSkip, t: FixTarget): FixStep {
  const one = s.missing.length === 1
  const values = one ? 'VALUE' : 'each VALUE'
  return {
    text: `add annotation${one ? '' : 's'} ${annotationKeys(s.missing)} to service account "${s.serviceAccount}", without which the kubelet does not run credential provider ${s.provider} (${values}: what the provider's documentation says ${one ? 'it holds' : 'each holds'}, such as the cloud identity to pull as)${t.voice === 'admission' ? ', then apply again' : ''}`,
    command: `kubectl annotate serviceaccount ${shellQuote(s.serviceAccount)} -n ${shellQuote(s.namespace)} ${s.missing.map((k) => shellQuote(`${k}=VALUE`)).join(' ')}`,
  }
}

/** Denied with nothing left unread: which secret to create, update or add, by name. */
function credentialFix(o: Checked, t: FixTarget): Fix {
  const ns = t.namespace
  const server = o.ref.domain
  const host = o.ref.registryHost
  const first = nameFirst(o)

  const tried = triedSecrets(o, t.secrets, ns)
  if (tried.length > 0) {
    const [secret, ...others] = tried
    const name = secret!.name
    const also = otherRegistries(o, secret!)
    // Writing it again keeps only the one registry: one that holds others gets a sibling instead.
    if (also.length === 0) {
      const rest = others.length === 0 ? '' : ` (or any of ${quoted(others.map((s) => s.name))}, also tried)`
      return {
        steps: [
          ...first,
          {
            text: `update secret "${name}" in place with an account that may pull from ${host}${rest}`,
            command: updateSecretCommand(name, server, ns),
          },
        ],
        alternatives: [],
        short: `update secret "${name}" with an account that may pull it`,
      }
    }
    return newSecretFix(o, t, first, `secret "${name}" also holds ${also.join(', ')}, so rather than rewrite it, `)
  }
  const mine = (s: SecretState): boolean => (t.secretServers?.get(s.name) ?? server) === server
  const listedMissing = t.secrets.find((s) => s.state === 'missing' && mine(s))
  if (listedMissing !== undefined) {
    return {
      steps: [
        ...first,
        {
          text: `create secret "${listedMissing.name}", which the pods already list`,
          command: createSecretCommand(listedMissing.name, server, ns),
        },
      ],
      alternatives: [],
      short: `create the listed secret "${listedMissing.name}" (type docker-registry, for ${host})`,
    }
  }
  const wrongType = t.secrets.find(
    (s): s is Exclude<SecretState, { state: 'found' }> => s.state === 'wrong-type' && mine(s),
  )
  if (wrongType !== undefined) {
    const type = wrongType.type ?? 'not docker-registry'
    const inPlace = wrongType.type !== undefined && DOCKER_TYPES.has(wrongType.type)
    return {
      steps: [
        ...first,
        inPlace
          ? {
              text: `secret "${wrongType.name}" is a ${type} secret without credentials; write them into it`,
              command: updateSecretCommand(wrongType.name, server, ns),
            }
          : {
              text: `secret "${wrongType.name}" is ${wrongType.type === undefined ? 'not a docker-registry secret' : `of type ${type}`}, which the kubelet ignores for pulls; if nothing else reads it, replace it with a docker-registry secret`,
              command: replaceSecretCommand(wrongType.name, server, ns),
            },
      ],
      alternatives: [],
      short: `make "${wrongType.name}" a docker-registry secret (it is ${type})`,
    }
  }
  const others = t.secrets.filter((s) => s.state === 'found').map((s) => s.name)
  return newSecretFix(
    o,
    t,
    first,
    others.length === 0 ? '' : `${quoted(others)} hold${others.length === 1 ? 's' : ''} no credentials for ${host}: `,
  )
}

/** Node, plugin or no credentials applied: a new secret, and how the pods get it. */
function newSecretFix(o: Checked, t: FixTarget, first: FixStep[], lead: string): Fix {
  const ns = t.namespace
  const server = o.ref.domain
  const host = o.ref.registryHost
  const steps = [...first]
  const plugins = [
    ...new Set(
      o.tried
        .filter((l) => l.startsWith('credential provider '))
        .map((l) => l.slice('credential provider '.length, l.indexOf(' (key ')).trim()),
    ),
  ]
  if (plugins.length > 0) {
    steps.push({
      text: `the credentials from credential provider ${plugins.join(', ')} were refused: give the identity the nodes' plugin uses pull access on ${host}; or give the pods a pull secret`,
    })
  } else if (o.tried.some((l) => !l.startsWith('secret '))) {
    steps.push({
      text: `${o.tried.join(', ')} ${o.tried.length === 1 ? 'was' : 'were'} refused: give the pods a pull secret`,
    })
  }
  const name = pullSecretNameFor(server)
  steps.push({
    text: `${lead}create a pull secret for ${server === 'docker.io' ? 'Docker Hub' : host}`,
    command: createSecretCommand(name, server, ns),
  })
  const { add, alternatives } = addSecret(t, name)
  steps.push(...add)
  return { steps, alternatives, short: `create a docker-registry secret "${name}" for ${host} and list it` }
}

/** How a new secret reaches the pods: their service account, their own list, or the live workload. */
function addSecret(t: FixTarget, name: string): { add: FixStep[]; alternatives: FixStep[] } {
  const current = t.secrets.map((s) => s.name).filter((n) => n !== name)
  const own = ownList(t, [...current, name])
  const account = accountStep(t, name)
  // A stuck pod took its secrets when it was made: it has to be made again to get the new one.
  const retry: FixStep[] =
    t.pod === undefined
      ? []
      : t.pod.bare
        ? [
            {
              text: `then delete pod ${t.pod.name} and create it again from its manifest (nothing re-creates a bare pod)`,
            },
          ]
        : [
            {
              text: 'then have the pod made again with it',
              command: `kubectl delete pod ${shellQuote(t.pod.name)} -n ${shellQuote(t.namespace)}`,
            },
          ]
  // The ServiceAccount admission plugin copies the account's list only into pods that list none.
  if (t.fromServiceAccount === 'yes')
    return {
      add: [account, ...retry],
      alternatives: [{ ...own, text: `or, instead of the service account, ${own.text}` }],
    }
  if (t.fromServiceAccount === 'maybe')
    return {
      add: [own],
      alternatives: [
        {
          ...account,
          text: `or, if the ${t.voice === 'admission' ? 'manifest lists' : 'pod template lists'} no pull secrets (these came from service account "${t.serviceAccount.name}"), ${account.text}`,
        },
        ...retry,
      ],
    }
  return { add: [own], alternatives: [] }
}

function ownList(t: FixTarget, names: readonly string[]): FixStep {
  const list = names.map((n) => `{name: ${n}}`).join(', ')
  if (t.voice === 'admission') return { text: `list it in ${t.specField}.imagePullSecrets: [${list}], and apply again` }
  if (t.patchPath !== undefined) {
    // PodSpec.imagePullSecrets merges by name in a strategic merge patch: the template's own stay.
    return {
      text: `list it in the pod template of ${object(t)} (a new rollout follows)`,
      command: `kubectl patch ${object(t)} -n ${shellQuote(t.namespace)} -p ${shellQuote(patchJson(t.patchPath, { imagePullSecrets: names.map((n) => ({ name: n })) }))}`,
    }
  }
  if (t.pod?.bare === true)
    return {
      text: `list it in the imagePullSecrets of pod ${t.pod.name}'s manifest ([${list}]) and create the pod again (a pod's imagePullSecrets cannot be changed in place)`,
    }
  return {
    text: `list it in the imagePullSecrets of the pod template that creates ${object(t)} ([${list}]) (a ${t.resource}'s template cannot be changed in place)`,
  }
}

function accountStep(t: FixTarget, name: string): FixStep {
  const sa = t.serviceAccount
  const retry = t.voice === 'admission' ? ', and apply again' : ''
  if (sa.imagePullSecrets === undefined) {
    return {
      text: `add "${name}" to the imagePullSecrets of service account "${sa.name}" (pullguard could not read its current list)${retry}`,
    }
  }
  // ServiceAccount.imagePullSecrets has no merge key: a patch replaces the list, so it carries the current one.
  const list = [...sa.imagePullSecrets.filter((n) => n !== name), name].map((n) => ({ name: n }))
  const patch = `kubectl patch serviceaccount ${shellQuote(sa.name)} -n ${shellQuote(t.namespace)} -p ${shellQuote(JSON.stringify({ imagePullSecrets: list }))}`
  // Pods cannot be made without their account: it comes first.
  if (sa.missing === true)
    return {
      text: `create service account "${sa.name}", which the pods name, with it${retry}`,
      command: `kubectl create serviceaccount ${shellQuote(sa.name)} -n ${shellQuote(t.namespace)} && ${patch}`,
    }
  return {
    text: `give it to the pods of service account "${sa.name}", keeping the account's list${retry}`,
    command: patch,
  }
}

function patchJson(path: readonly string[], podSpec: Record<string, unknown>): string {
  let body: Record<string, unknown> = podSpec
  for (const key of [...path].reverse()) body = { [key]: body }
  return JSON.stringify(body)
}

/** A fix as one list of steps: each step, then each alternative worded with "or". */
export function fixSteps(fix: Fix): FixStep[] {
  // An alternative's own follow-up ("then …") reads on from it.
  return [
    ...fix.steps,
    ...fix.alternatives.map((s) =>
      s.text.startsWith('or') || s.text.startsWith('then ') ? s : { ...s, text: `or ${s.text}` },
    ),
  ]
}

/** A fix as lines: each step, then each alternative with "or". Commands end their line. */
export function fixLines(fix: Fix): string[] {
  return fixSteps(fix).map((s) => (s.command === undefined ? s.text : `${s.text}: ${s.command}`))
}

/** A fix inside a denial: inline when it is one line without a command, else one line each, indented. */
export function renderFix(fix: Fix): string {
  const lines = fixLines(fix)
  if (lines.length === 1 && fix.steps[0]?.command === undefined) return ` Fix: ${lines[0]}.`
  return ' Fix:\n' + lines.map((l) => `    ${l}`).join('\n')
}
