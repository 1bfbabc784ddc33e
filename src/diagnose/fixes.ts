/**
 * The sentences `pullguard diagnose` prints for one stuck container: what pullguard finds now, and
 * the fix as commands filled in with the pod's real names (its secrets, service account, workload,
 * the nearest existing tags). The fix for an image that will not pull is the webhook's own
 * (policy/fixes.ts) in diagnose's voice; what is said of an image that pulls now, or could not be
 * verified, is diagnose's alone.
 */
import { fixFor, fixLines as sharedFixLines, type FixTarget, type SecretState } from '../policy/fixes.js'
import { pullability, reasonCode, type ImageOutcome } from '../policy/outcome.js'
import { formatPlatform, type Platform } from '../policy/platforms.js'
import { problem } from '../policy/messages.js'
import type { Workload } from './owner.js'
import type { KubeletCause } from './pull-failures.js'

export type { SecretState }

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
  /** Which registry each listed secret a fix writes is written for (claimListedSecrets over the pod's outcomes). */
  secretServers?: ReadonlyMap<string, string>
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
    fixes: [
      `load the image onto the nodes beforehand, or let the kubelet pull it: set imagePullPolicy: IfNotPresent on container "${container}" in ${describe(ctx.workload)}`,
    ],
  }
}

function describe(w: Workload): string {
  return `${w.resource}/${w.name}`
}

function repository(o: Checked): string {
  return `${o.ref.domain}/${o.ref.path}`
}

function nowSentence(o: ImageOutcome, ctx: FixContext): string {
  if (o.kind === 'exempt') return `exempt by --exempt-image ${o.pattern}: not checked`
  if (o.kind === 'invalid') return o.problem
  if (o.kind === 'metadata-host') return `registry host ${o.problem}: no node can pull from there`
  if (o.kind === 'blocked' && o.problem !== undefined) return problem(o)
  if (o.kind === 'blocked')
    return `${o.ref.name} is blocked by ${o.file} (prefix "${o.prefix}", blocked = true): the runtime refuses to pull it`
  if (o.kind === 'broken-secret')
    return `pull secret "${o.problem.secret}" exists but does not parse (${o.problem.detail}); the kubelet fails every pull of this pod while it is listed`
  if (o.kind === 'short-name' || o.kind === 'signature-refused') return problem(o)
  const { ref, result } = o
  const tried = o.tried.length === 0 ? 'no credentials apply, so the pull is anonymous' : `tried ${o.tried.join(', ')}`
  if (
    pullability(o) === 'unknown' &&
    (result.code === 'AccessDenied' || result.code === 'RepositoryNotFoundOrDenied')
  ) {
    const unread = ctx.secrets.filter((s) => s.state === 'forbidden' || s.state === 'error').map((s) => `"${s.name}"`)
    return `${ref.registryHost} refused the credentials pullguard could read (${tried}); pull secrets ${unread.join(', ')} could not be read with your credentials, and the kubelet may hold what they contain`
  }
  switch (result.code) {
    case 'Exists':
      // The runtime's refusal and the kubelet's say the same as at admission.
      if (o.schema1 !== undefined || o.neverPull?.kind === 'refused') return problem(o)
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
      return o.tried.length === 0
        ? `${ref.registryHost} requires credentials, and no pull secret of this pod holds any for it`
        : `${ref.registryHost} refused the credentials (${tried})`
    case 'RateLimited':
      return `could not be verified from here: ${ref.registryHost} is rate limiting${result.retryAfterSeconds === undefined ? '' : ` (retry after ${result.retryAfterSeconds}s)`}`
    case 'RegistryUnreachable':
      return `could not be verified from here: ${ref.registryHost} is unreachable (${result.cause}: ${result.detail})`
  }
}

function fixLines(o: ImageOutcome, ctx: FixContext, kubelet: KubeletCause | undefined, verdict: Verdict): string[] {
  if (verdict === 'pulls-now' && o.kind === 'checked') return pullsNow(o, ctx, kubelet)
  if (verdict === 'unknown' && o.kind === 'checked') return unknown(o, ctx)
  const fix = fixFor(o, diagnoseTarget(ctx))
  return fix === undefined ? [] : sharedFixLines(fix)
}

/** The pod's situation in the shared fix builder's terms. */
export function diagnoseTarget(ctx: FixContext): FixTarget {
  const w = ctx.workload
  const listed = ctx.secrets.map((s) => s.name)
  const account = ctx.serviceAccount.imagePullSecrets
  const fromServiceAccount =
    listed.length === 0
      ? 'yes'
      : account !== undefined && account.length === listed.length && account.every((n, i) => n === listed[i])
        ? 'maybe'
        : 'no'
  return {
    voice: 'diagnose',
    namespace: ctx.namespace,
    resource: w.resource,
    name: w.name,
    specField: w.specPath?.join('.') ?? 'spec',
    patchPath: w.specPath,
    secrets: ctx.secrets,
    ...(ctx.secretServers === undefined ? {} : { secretServers: ctx.secretServers }),
    fromServiceAccount,
    serviceAccount: ctx.serviceAccount,
    pod: { name: ctx.pod, bare: w.bare, platform: ctx.nodePlatform },
  }
}

function pullsNow(o: Checked, ctx: FixContext, kubelet: KubeletCause | undefined): string[] {
  const host = o.ref.registryHost
  if (kubelet === 'tls') {
    return [
      `the node reported a TLS error, but ${host} answers pullguard with a certificate it trusts: the node's container runtime does not trust the registry's CA; install it on the nodes (containerd: /etc/containerd/certs.d/${host}/ca.crt) or fix the registry's certificate chain`,
    ]
  }
  if (kubelet === 'network') {
    return [
      `the node could not reach ${host}, and pullguard can from where it runs: check DNS, routes, firewall rules and proxy settings for ${host} on ${ctx.node === undefined ? 'the node' : `node ${ctx.node}`}`,
    ]
  }
  if (kubelet === 'signature') {
    return [
      `the node's CRI-O refused the image under its signature policy, which pullguard was not given: run diagnose with the nodes' --registries-conf, --signature-policy (or --crio-config) and --registries-d to see which requirement fails`,
    ]
  }
  if (kubelet === 'short-name') {
    return [
      `the node's CRI-O could not resolve the short name "${o.use.image}": write the image with its registry, or run diagnose with the nodes' --registries-conf (and --crio-config) to see what it resolves to`,
    ]
  }
  if (kubelet === 'platform' && ctx.nodePlatform === undefined) {
    return [
      `the node reported no entry for its platform in the image index, and pullguard could not read the node's platform to check: compare the index's platforms with the node's (kubectl get node ${ctx.node ?? 'NODE'} -o jsonpath='{.status.nodeInfo.architecture}')`,
    ]
  }
  const lines = [
    `the registry answers now; the kubelet retries with back-off (up to 5 minutes between tries). To retry at once: kubectl delete pod ${ctx.pod} -n ${ctx.namespace}`,
  ]
  if (ctx.workload.bare)
    lines.push(`${ctx.pod} is a bare pod: nothing re-creates it after a delete, so apply its manifest again`)
  return lines
}

function unknown(o: Checked, ctx: FixContext): string[] {
  if (o.result.code === 'AccessDenied' || o.result.code === 'RepositoryNotFoundOrDenied') {
    return [
      `run diagnose as someone who may get secrets in ${ctx.namespace} to see whether those secrets hold working credentials for ${o.ref.registryHost}`,
    ]
  }
  return [
    `pullguard could not ask ${o.ref.registryHost}; the kubelet's message above is the best evidence (run diagnose again from a machine with access to ${o.ref.registryHost})`,
  ]
}
