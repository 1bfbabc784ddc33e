/**
 * What pullguard found out about one image in one review, and what that means. Errors become
 * verdicts here and nowhere else.
 */
import type { SecretProblem } from '../credentials/pull-secrets.js'
import type { ShortNameResolution } from '../mirrors/short-names.js'
import type { RefusedFinding, SignatureFinding } from './signature-check.js'
import type { ProviderFailure, ProviderSkip } from '../providers/providers.js'
import type { ImageReference } from '../reference/index.js'
import type { CheckResult, Platform, ReasonCode } from '../registry/index.js'
import type { VerificationPolicy } from '../pools/pool.js'
import type { NeverPullVerdict } from '../pools/verification.js'
import type { ImageUse } from './subject.js'

/** How an index's platforms compare with the nodes the pod can run on (platforms.ts). */
export interface PlatformFit {
  verdict: 'ok' | 'some' | 'none'
  /** Platforms the pod may run on that the index has no entry for. */
  missing: Platform[]
  /** Platforms the index has (attestations left out). */
  available: Platform[]
  /** Cluster platforms the index has that the pod's constraints exclude (where it could run instead). */
  elsewhere?: Platform[]
}

export type ImageOutcome =
  | { kind: 'exempt'; use: ImageUse; pattern: string }
  | { kind: 'invalid'; use: ImageUse; problem: string }
  /** The registry host is a cloud metadata or link-local address: no request was made. */
  | { kind: 'metadata-host'; use: ImageUse; problem: string }
  /** The nodes' runtime refuses this registry (registries.conf `blocked = true`): no request was made. */
  /** `problem`: no `blocked = true`, but a rule whose location cannot be used, which fails every pull under it. */
  | {
      kind: 'blocked'
      use: ImageUse
      ref: ImageReference
      file: string
      prefix: string
      problem?: string
      /** `containerd`: the registry's hosts.toml names a CA or client file that does not load. */
      runtime?: 'containerd'
    }
  /** The nodes' signature policy rejects the name whatever the registry holds (`reject`): no request was made. */
  | { kind: 'signature-refused'; use: ImageUse; ref: ImageReference; finding: RefusedFinding }
  /** A short name the nodes' CRI-O refuses (ambiguous in enforcing mode, or nowhere to look): no request was made. */
  | {
      kind: 'short-name'
      use: ImageUse
      resolution: Extract<ShortNameResolution, { kind: 'ambiguous' | 'unresolvable' }>
    }
  /** `server`: the registry the command that writes the secret again names (the pod's first); `servers`: every registry the pod pulls from. */
  | { kind: 'broken-secret'; use: ImageUse; problem: SecretProblem; server?: string; servers?: string[] }
  | {
      kind: 'checked'
      use: ImageUse
      ref: ImageReference
      result: CheckResult
      /** A short name on CRI-O nodes: what it became, and what each name tried before the answer gave. */
      shortName?: ShortNameUse
      /** Under a signature policy, once the manifest was found: whether its signatures pass. */
      signature?: SignatureFinding
      /** Labels of the credentials that applied to this image, in the order tried. */
      tried: string[]
      /** Some pull secret could not be read: the kubelet may hold credentials we could not try. */
      incomplete: boolean
      /** When the manifest is an index and the cluster's platforms are known. */
      platform?: PlatformFit
      /** For TagNotFound: existing tags nearest to the one asked for. */
      suggestions?: string[]
      /** For RepositoryNotFound: the registry's repositories nearest to the one asked for (its catalog). */
      repositorySuggestions?: string[]
      /** For RepositoryNotFound: the registry does not list its repositories to these credentials. */
      catalogRefused?: boolean
      /** For TagNotFound on UPDATE: whether the tag the container had before is still in the repository. */
      previousTagExists?: boolean
      /** Credential provider plugins whose matchImages cover the image. */
      providers?: string[]
      /** Plugins that matched but failed: the kubelet's plugin may still give credentials we lack. */
      providerFailures?: ProviderFailure[]
      /**
       * Plugins that matched but that the kubelet would not run for this pod (a required service
       * account annotation missing): no credentials from them here or on the node, so they change no
       * verdict; a refusal names them, and the fix adds the annotation.
       */
      providerSkips?: ProviderSkip[]
      /** With providers: until when their answers would come back the same (0: not reusable). */
      providersReusableUntil?: number
      /** Judged for a node pool (--node-pools): its name. */
      pool?: string
      /** A Docker schema 1 manifest on a pool whose runtimes all refuse it (`refused`), or some may (`uncertain`: a warning). */
      schema1?: { verdict: 'refused' | 'uncertain'; runtimes: string[] }
      /** `imagePullPolicy: Never`: what the pool's kubelet does with a copy on the node (KEP-2535). */
      neverPull?: NeverPullVerdict & { policy: VerificationPolicy }
      /** `imagePullPolicy: Never` on a pod bound to a node whose status.images does not list it: the node's name. */
      notOnNode?: string
    }

/** How CRI-O resolved a short name, for the outcome of the name it became (`ref`). */
export interface ShortNameUse {
  /** The name as written, without tag or digest. */
  written: string
  via: 'alias' | 'search'
  /** The file that set the alias, or the search list. */
  origin: string
  /** Every candidate in CRI-O's order, with what the registry (or the nodes' rules) said; the last one tried is `ref`. */
  tried: Array<{ name: string; code: string }>
}

/** pullable: the kubelet will pull it. not-pullable: it definitely will not. unknown: policy decides. */
export type Pullability = 'pullable' | 'not-pullable' | 'unknown'

export function pullability(o: ImageOutcome): Pullability {
  if (o.kind === 'exempt') return 'pullable'
  if (o.use.neverPulled === true) return neverPulledPullability(o)
  if (o.kind !== 'checked') return 'not-pullable'
  switch (o.result.code) {
    case 'Exists':
      // containerd 2.0 may be set to pull it: pullable, with a warning (messages.ts notes).
      if (o.schema1?.verdict === 'refused') return 'not-pullable'
      if (o.signature?.verdict === 'rejected') return 'not-pullable'
      if (o.signature?.verdict === 'unverifiable') return 'unknown'
      return o.platform?.verdict === 'none' ? 'not-pullable' : 'pullable'
    case 'TagNotFound':
    case 'DigestNotFound':
    case 'RepositoryNotFound':
      return 'not-pullable'
    case 'AccessDenied':
    case 'RepositoryNotFoundOrDenied':
      // Never deny for lack of a credential we were not allowed to see, or that a plugin failed to
      // give here: on the node it may well give it.
      return o.incomplete || (o.providerFailures?.length ?? 0) > 0 ? 'unknown' : 'not-pullable'
    case 'RateLimited':
    case 'RegistryUnreachable':
      return 'unknown'
  }
}

/** The stable reason code for logs and metrics. */
/** Every reason an image's outcome can have: the registry's answers and the policy's own. */
export type OutcomeReason =
  | ReasonCode
  | 'Exempt'
  | 'InvalidReference'
  | 'MetadataHost'
  | 'RegistryBlocked'
  | 'PullSecretUnparseable'
  | 'ShortNameAmbiguous'
  | 'ShortNameUnresolvable'
  | 'SignatureRejected'
  | 'NeverPullRefused'
  | 'Schema1Unsupported'
  | 'Schema1Unverified'
  | 'SignatureValidationFailed'
  | 'SignatureUnverified'
  | 'PlatformMismatch'

export function reasonCode(o: ImageOutcome): OutcomeReason {
  if (o.kind === 'exempt') return 'Exempt'
  if (o.kind === 'invalid') return 'InvalidReference'
  if (o.kind === 'metadata-host') return 'MetadataHost'
  if (o.kind === 'blocked') return 'RegistryBlocked'
  if (o.kind === 'broken-secret') return 'PullSecretUnparseable'
  if (o.kind === 'short-name') return o.resolution.kind === 'ambiguous' ? 'ShortNameAmbiguous' : 'ShortNameUnresolvable'
  if (o.kind === 'signature-refused') return 'SignatureRejected'
  if (o.use.neverPulled === true && o.neverPull?.kind === 'refused') return 'NeverPullRefused'
  if (o.result.code === 'Exists' && o.schema1 !== undefined)
    return o.schema1.verdict === 'refused' ? 'Schema1Unsupported' : 'Schema1Unverified'
  if (o.result.code === 'Exists' && o.signature?.verdict === 'rejected') return 'SignatureValidationFailed'
  if (o.result.code === 'Exists' && o.signature?.verdict === 'unverifiable') return 'SignatureUnverified'
  if (o.result.code === 'Exists' && o.platform?.verdict === 'none') return 'PlatformMismatch'
  return o.result.code
}

/**
 * `imagePullPolicy: Never`: nothing is pulled, so only what the node holds matters, which pullguard
 * cannot see (a local build, a preloaded image). What it can see is whether the pool's kubelet
 * gives the pod a copy at all (KEP-2535, `neverPull`): under AlwaysVerify, or off the allowlist,
 * never to a pod whose own credentials the registry refuses (ErrImageNeverPull on every node).
 * A refusal that might come from a credential pullguard could not read or a plugin that failed
 * here is not certain. A missing or unanswered repository (a local-only name) says nothing.
 */
function neverPulledPullability(o: ImageOutcome): Pullability {
  // CRI-O resolves a short name for the image status too: the kubelet's look at the node fails (ImageInspectError).
  if (o.kind === 'invalid' || o.kind === 'short-name') return 'not-pullable'
  if (o.kind !== 'checked' || o.neverPull?.kind !== 'refused') return 'pullable'
  return o.incomplete || (o.providerFailures?.length ?? 0) > 0 ? 'unknown' : 'not-pullable'
}
