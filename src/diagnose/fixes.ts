/**
 * The sentences `pullguard diagnose` prints for one stuck container: what pullguard finds now, and
 * the fix as commands filled in with the pod's real names (its secrets, service account, workload,
 * the nearest existing tags). The webhook's messages (policy/messages.ts) speak to someone about to
 * apply a manifest; these speak to someone whose pod is already running into a wall.
 */
import { createSecretCommand, pullSecretNameFor } from '../policy/messages.js'
import { pullability, reasonCode, type ImageOutcome } from '../policy/outcome.js'
import { formatPlatform, type Platform } from '../policy/platforms.js'
import type { SecretProblem } from '../credentials/pull-secrets.js'
import { canSetImage, type Workload } from './owner.js'
import type { KubeletCause } from './pull-failures.js'

/** What became of one name in the pod's imagePullSecrets. */
export type SecretState =
  | { name: string; state: 'found'; registries: string[] }
  | { name: string; state: SecretProblem['kind']; detail: string }

export interface FixContext {
  namespace: string
  pod: string
  workload: Workload
  /** The pod's imagePullSecrets in order (empty: it lists none). */
  secrets: readonly SecretState[]
  /** The pod's service account, with its imagePullSecrets when they could be read. */
  serviceAccount: { name: string; imagePullSecrets: string[] | undefined }
  /** The platform of the node the pod is bound to, when known. */
  nodePlatform: Platform | undefined
  node: string | undefined
}

export type Verdict = 'still-broken' | 'pulls-now' | 'unknown'

export interface Finding {
  verdict: Verdict
  /** The webhook's reason code (TagNotFound, AccessDenied, …). */
  reason: string
  /** What pullguard finds now, one sentence. */
  now: string
  /** Each fix step on its own line; commands are ready to paste except USER/PASSWORD. */
  fixes: string[]
}

type Checked = Extract<ImageOutcome, { kind: 'checked' }>

const VERDICTS = { 'not-pullable': 'still-broken', pullable: 'pulls-now', unknown: 'unknown' } as const

export function findingFor(o: ImageOutcome, ctx: FixContext, kubelet: KubeletCause | undefined): Finding {
  const verdict = VERDICTS[pullability(o)]
  return { verdict, reason: reasonCode(o), now: nowSentence(o, ctx), fixes: fixLines(o, ctx, kubelet, verdict) }
}

/** A container under `imagePullPolicy: Never` whose image is not on the node: no registry is asked. */
export function neverPullFinding(container: string, image: string, ctx: FixContext): Finding {
  const node = ctx.node === undefined ? 'its node' : `node ${ctx.node}`
  return {
    verdict: 'still-broken',
    reason: 'ImageNeverPulled',
    now: `imagePullPolicy is Never and "${image}" is not present on ${node}; the kubelet will not pull it`,
    fixes: [`load the image onto the nodes beforehand, or let the kubelet pull it: set imagePullPolicy: IfNotPresent on container "${container}" in ${describe(ctx.workload)}`],
  }
}

function describe(w: Workload): string {
  return `${w.resource}/${w.name}`
}

function repository(o: Checked): string {
  return `${o.ref.domain}/${o.ref.path}`
}

/** The pod's secrets that were tried for this image, by name (labels are `secret ns/name (key "…")`). */
function triedSecrets(o: Checked, ctx: FixContext): string[] {
  return ctx.secrets.filter((s) => o.tried.some((label) => label.startsWith(`secret ${ctx.namespace}/${s.name} (`))).map((s) => s.name)
}

function nowSentence(o: ImageOutcome, ctx: FixContext): string {
  if (o.kind === 'exempt') return `exempt by --exempt-image ${o.pattern}: not checked`
  if (o.kind === 'invalid') return o.problem
  if (o.kind === 'metadata-host') return `registry host ${o.problem}: no node can pull from there`
  if (o.kind === 'broken-secret') return `pull secret "${o.problem.secret}" exists but does not parse (${o.problem.detail}); the kubelet fails every pull of this pod while it is listed`
  const { ref, result } = o
  const tried = o.tried.length === 0 ? 'no credentials apply, so the pull is anonymous' : `tried ${o.tried.join(', ')}`
  if (pullability(o) === 'unknown' && (result.code === 'AccessDenied' || result.code === 'RepositoryNotFoundOrDenied')) {
    const unread = ctx.secrets.filter((s) => s.state === 'forbidden' || s.state === 'error').map((s) => `"${s.name}"`)
    return `${ref.registryHost} refused the credentials pullguard could read (${tried}); pull secrets ${unread.join(', ')} could not be read with your credentials, and the kubelet may hold what they contain`
  }
  switch (result.code) {
    case 'Exists':
      if (o.platform?.verdict === 'none') {
        return `${repository(o)} exists, but its image index has no entry for ${ctx.node === undefined ? '' : `node ${ctx.node}'s platform `}${o.platform.missing.map(formatPlatform).join(', ')} (it has ${o.platform.available.map(formatPlatform).join(', ') || 'no platform entries'})`
      }
      return `the registry serves it (${result.digest}); ${o.tried.length === 0 ? 'anonymous pulls are allowed' : tried}`
    case 'TagNotFound':
      return `tag "${ref.reference}" does not exist in ${repository(o)}`
    case 'DigestNotFound':
      return `digest ${ref.reference} does not exist in ${repository(o)}`
    case 'RepositoryNotFound':
      return `repository ${repository(o)} does not exist`
    case 'RepositoryNotFoundOrDenied':
      return `${ref.registryHost} says repository ${ref.path} does not exist or needs authorization (${tried})`
    case 'AccessDenied':
      return o.tried.length === 0 ? `${ref.registryHost} requires credentials, and no pull secret of this pod holds any for it` : `${ref.registryHost} refused the credentials (${tried})`
    case 'RateLimited':
      return `could not be verified from here: ${ref.registryHost} is rate limiting${result.retryAfterSeconds === undefined ? '' : ` (retry after ${result.retryAfterSeconds}s)`}`
    case 'RegistryUnreachable':
      return `could not be verified from here: ${ref.registryHost} is unreachable (${result.cause}: ${result.detail})`
  }
}

function fixLines(o: ImageOutcome, ctx: FixContext, kubelet: KubeletCause | undefined, verdict: Verdict): string[] {
  const ns = ctx.namespace
  if (o.kind === 'exempt') return []
  if (o.kind === 'metadata-host') return [`use the image's real registry: ${setImage(ctx, o.use.container, '<image>')}`]
  if (o.kind === 'invalid') return [`correct the image reference: ${setImage(ctx, o.use.container, '<image>')}`]
  if (o.kind === 'broken-secret') {
    const name = o.problem.secret
    return [
      `re-create secret "${name}" with valid content: kubectl delete secret ${name} -n ${ns} && ${createSecretCommand(name, firstRegistry(o.use.image), ns)}`,
      `or remove "${name}" from the imagePullSecrets of ${describe(ctx.workload)}`,
    ]
  }
  if (verdict === 'pulls-now') return pullsNow(o, ctx, kubelet)
  if (verdict === 'unknown') return unknown(o, ctx)
  const { ref, result } = o
  switch (result.code) {
    case 'TagNotFound': {
      const s = o.suggestions
      if (s === undefined) return [`push tag "${ref.reference}" to ${repository(o)}, or use a tag that exists (pullguard could not list its tags)`]
      if (s.length === 0) return [`no existing tag of ${repository(o)} is near "${ref.reference}": push that tag, or pick one that exists`]
      return [`existing tags nearest to "${ref.reference}": ${s.join(', ')}`, setImage(ctx, o.use.container, withTag(o, s[0]!))]
    }
    case 'DigestNotFound':
      return [`the digest was deleted or never pushed to ${repository(o)}: ${setImage(ctx, o.use.container, `${repository(o)}:<tag>`)}`]
    case 'RepositoryNotFound':
      return [`check the image name for typos: ${ref.registryHost} has no repository ${ref.path}`]
    case 'Exists':
      return platformFix(o, ctx)
    case 'AccessDenied':
    case 'RepositoryNotFoundOrDenied':
      return credentialFix(o, ctx)
    default:
      return []
  }
}

function pullsNow(o: Checked, ctx: FixContext, kubelet: KubeletCause | undefined): string[] {
  const host = o.ref.registryHost
  if (kubelet === 'tls') {
    return [`the node reported a TLS error, but ${host} answers pullguard with a certificate it trusts: the node's container runtime does not trust the registry's CA; install it on the nodes (containerd: /etc/containerd/certs.d/${host}/ca.crt) or fix the registry's certificate chain`]
  }
  if (kubelet === 'network') {
    return [`the node could not reach ${host}, and pullguard can from where it runs: check DNS, routes, firewall rules and proxy settings for ${host} on ${ctx.node === undefined ? 'the node' : `node ${ctx.node}`}`]
  }
  if (kubelet === 'platform' && ctx.nodePlatform === undefined) {
    return [`the node reported no entry for its platform in the image index, and pullguard could not read the node's platform to check: compare the index's platforms with the node's (kubectl get node ${ctx.node ?? 'NODE'} -o jsonpath='{.status.nodeInfo.architecture}')`]
  }
  const lines = [`the registry answers now; the kubelet retries with back-off (up to 5 minutes between tries). To retry at once: kubectl delete pod ${ctx.pod} -n ${ctx.namespace}`]
  if (ctx.workload.bare) lines.push(`${ctx.pod} is a bare pod: nothing re-creates it after a delete, so apply its manifest again`)
  return lines
}

function unknown(o: Checked, ctx: FixContext): string[] {
  if (o.result.code === 'AccessDenied' || o.result.code === 'RepositoryNotFoundOrDenied') {
    return [`run diagnose as someone who may get secrets in ${ctx.namespace} to see whether those secrets hold working credentials for ${o.ref.registryHost}`]
  }
  return [`pullguard could not ask ${o.ref.registryHost}; the kubelet's message above is the best evidence (run diagnose again from a machine with access to ${o.ref.registryHost})`]
}

function platformFix(o: Checked, ctx: FixContext): string[] {
  if (o.platform?.verdict !== 'none') return []
  const available = o.platform.available.filter((p) => p.os === (ctx.nodePlatform?.os ?? p.os))
  const arch = available[0]?.architecture
  return [
    `publish ${o.use.image} for ${o.platform.missing.map(formatPlatform).join(', ')} (a multi-platform build), or`,
    arch === undefined
      ? `schedule the pod onto nodes of a platform the image has`
      : ctx.workload.specPath === undefined
        ? `schedule the pod onto nodes the image supports: set nodeSelector kubernetes.io/arch: ${arch} in the pod template of ${describe(ctx.workload)} and re-create it`
        : `schedule the pod onto nodes the image supports: kubectl patch ${describe(ctx.workload)} -n ${ctx.namespace} -p '${patchJson(ctx.workload, { nodeSelector: { 'kubernetes.io/arch': arch } })}'`,
  ]
}

/** Denied with nothing left unread: which secret to create, update or add, by name. */
function credentialFix(o: Checked, ctx: FixContext): string[] {
  const ns = ctx.namespace
  const server = o.ref.domain
  const host = o.ref.registryHost
  const lines: string[] = []
  if (o.result.code === 'RepositoryNotFoundOrDenied') lines.push(`check the image name first: ${host} gives the same answer for a repository that does not exist`)
  const tried = triedSecrets(o, ctx)
  if (tried.length > 0) {
    for (const name of tried) {
      lines.push(`update secret "${name}" with an account that may pull ${o.ref.path}: ${createSecretCommand(name, server, ns)} --dry-run=client -o yaml | kubectl apply -f -`)
    }
    return lines
  }
  if (o.tried.length > 0) {
    // Only node credentials (--node-docker-config) applied, and they were refused.
    lines.push(`the nodes' own credentials for ${host} were refused (${o.tried.join(', ')}): give the pod a pull secret`)
  }
  const missing = ctx.secrets.find((s) => s.state === 'missing')
  if (missing !== undefined) {
    lines.push(`create the secret "${missing.name}" that the pod already lists (the kubelet reads it on its next try): ${createSecretCommand(missing.name, server, ns)}`)
    return lines
  }
  const wrongType = ctx.secrets.find((s) => s.state === 'wrong-type')
  if (wrongType !== undefined) {
    lines.push(`secret "${wrongType.name}" is not a docker-registry secret, so the kubelet ignores it; re-create it: kubectl delete secret ${wrongType.name} -n ${ns} && ${createSecretCommand(wrongType.name, server, ns)}`)
    return lines
  }
  const name = pullSecretNameFor(server)
  const found = ctx.secrets.filter((s): s is Extract<SecretState, { state: 'found' }> => s.state === 'found')
  if (found.length > 0) {
    const holds = found.map((s) => `"${s.name}" (${s.registries.join(', ') || 'no registries'})`).join(', ')
    lines.push(`the pod's pull secrets hold credentials for other registries only: ${holds}; none for ${host}`)
  }
  lines.push(`create a pull secret for ${host}: ${createSecretCommand(name, server, ns)}`)
  lines.push(...addSecret(ctx, name))
  return lines
}

/** How a new secret reaches the pod: its template, or its service account, or its manifest. */
function addSecret(ctx: FixContext, name: string): string[] {
  const w = ctx.workload
  const lines: string[] = []
  const ref = [{ name }]
  if (w.specPath !== undefined) {
    // PodSpec.imagePullSecrets merges by name in a strategic merge patch: the existing ones stay.
    lines.push(`add it to ${describe(w)} (a new rollout follows): kubectl patch ${describe(w)} -n ${ctx.namespace} -p '${patchJson(w, { imagePullSecrets: ref })}'`)
  } else if (w.bare) {
    lines.push(`add it to the imagePullSecrets of pod ${ctx.pod}'s manifest and re-create the pod (a pod's imagePullSecrets cannot be changed in place)`)
  } else {
    lines.push(`add it to the imagePullSecrets of the pod template that creates ${describe(w)} (a ${w.resource}'s template cannot be changed in place)`)
  }
  // The ServiceAccount admission plugin copies the account's secrets only into pods that list none.
  if (ctx.secrets.length === 0) {
    const sa = ctx.serviceAccount
    const current = sa.imagePullSecrets
    if (current === undefined) {
      lines.push(`or give it to every new pod of service account "${sa.name}" (add "${name}" to its imagePullSecrets; pullguard could not read the current list), then kubectl delete pod ${ctx.pod} -n ${ctx.namespace}`)
    } else {
      // ServiceAccount.imagePullSecrets has no merge key: a patch replaces the list, so it carries the current one.
      const list = [...current.filter((n) => n !== name), name].map((n) => ({ name: n }))
      lines.push(`or give it to every new pod of service account "${sa.name}": kubectl patch serviceaccount ${sa.name} -n ${ctx.namespace} -p '${JSON.stringify({ imagePullSecrets: list })}', then kubectl delete pod ${ctx.pod} -n ${ctx.namespace} (pods take their service account's pull secrets when created)`)
    }
  }
  return lines
}

function patchJson(w: Workload, podSpec: Record<string, unknown>): string {
  let body: Record<string, unknown> = podSpec
  for (const key of [...(w.specPath ?? [])].reverse()) body = { [key]: body }
  return JSON.stringify(body)
}

function setImage(ctx: FixContext, container: string, image: string): string {
  const w = ctx.workload
  if (canSetImage(w)) return `kubectl set image ${describe(w)} -n ${ctx.namespace} ${container}=${image}`
  return `change container "${container}" to ${image} where ${describe(w)} is defined (its pod template cannot be changed in place)`
}

/** The image as written, with another tag (keeps the user's spelling: `nginx`, not `docker.io/library/nginx`). */
function withTag(o: Checked, tag: string): string {
  const written = o.use.image
  const old = o.ref.tag
  if (old !== undefined && o.ref.digest === undefined && written.endsWith(`:${old}`)) return `${written.slice(0, -old.length - 1)}:${tag}`
  return `${repository(o)}:${tag}`
}

/** Best effort for a secret command when the reference did not parse: its first path part if it looks like a host. */
function firstRegistry(image: string): string {
  const first = image.split('/')[0] ?? ''
  return image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'docker.io'
}
