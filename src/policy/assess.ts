/**
 * What pullguard finds out about a subject's images, before any verdict: which mode applies,
 * which pull secrets the kubelet would use, and each image's outcome. The webhook's Judge turns
 * this into a Verdict with decide(); `pullguard check` reports it image by image. One function,
 * so both reach the same outcomes.
 */
import { pool } from '../async/pool.js'
import type { KeyringEntry } from '../credentials/keyring.js'
import { loadPullKeyring, type SecretProblem } from '../credentials/pull-secrets.js'
import type { ProvidedCredentials } from '../providers/providers.js'
import type { SecretSource, ServiceAccountSource } from '../kube/sources.js'
import type { ShortNameResolution } from '../mirrors/short-names.js'
import { tryParseReference, type ImageReference } from '../reference/index.js'
import type { ImageChecker } from '../registry/cached-checker.js'
import type { Credential } from '../registry/credential.js'
import { metadataHostProblem } from '../registry/metadata-hosts.js'
import { answerRank, type CheckResult, type Platform } from '../registry/index.js'
import type { ImageExemptions } from './exemptions.js'
import type { NamespaceModes } from './namespace-mode.js'
import type { Mode } from './namespace-mode.js'
import type { ImageOutcome, ShortNameUse } from './outcome.js'
import { beforeAsking, verifyFound, type SignatureFinding, type SignaturePolicyView } from './signature-check.js'
import type { PolicyMatch } from '../signatures/signature-policies.js'
import { formatPlatform, judgePlatforms, podPlatforms } from './platforms.js'
import { pullSecretNames, type PullSecretNames } from './pull-secret-names.js'
import type { ImageUse, PodSubject } from './subject.js'
import { suggestRepositories } from './repository-suggestions.js'
import { suggestTags } from './tag-suggestions.js'

export interface AssessOptions {
  checker: ImageChecker
  secrets: SecretSource
  serviceAccounts: ServiceAccountSource
  modes: NamespaceModes
  exemptNamespaces?: ReadonlySet<string>
  exemptImages?: ImageExemptions
  /** The nodes' own credentials (--node-docker-config, or check's --docker-config), tried after the pod's. */
  nodeCredentials?: { entries(): readonly KeyringEntry[] }
  /** Credential provider plugins (--image-credential-provider-config), tried after the node's docker config, as the kubelet does. */
  credentialProviders?: {
    provide(
      repository: string,
      signal?: AbortSignal,
      pod?: { namespace: string; serviceAccountName: string },
    ): Promise<ProvidedCredentials>
  }
  /** The cluster's platforms; an empty list means unknown (no platform check). */
  clusterPlatforms?: { platforms(signal?: AbortSignal): Promise<readonly Platform[]> }
  /** The nodes' signature policy (--signature-policy, --signature-policy-dir, --registries-d). */
  signaturePolicies?: SignaturePolicyView
  /**
   * The nodes' registries.conf (--registries-conf): a registry it blocks is refused by the
   * runtime, and CRI-O resolves short names with it.
   */
  pullRules?: {
    blocked(ref: ImageReference): { file: string; prefix: string; problem?: string } | undefined
    shortName?(input: string): ShortNameResolution
  }
}

export type Assessment =
  /** --exempt-namespace: nothing was read or checked. */
  | { mode: 'exempt' }
  /** The namespace says `pullguard.io/mode: off`; `modeNote` when the label could not be used. */
  | { mode: 'off'; modeNote: string | undefined }
  | {
      mode: Mode
      modeNote: string | undefined
      /** One per entry of subject.images, in the same order. */
      outcomes: ImageOutcome[]
      secretNames: PullSecretNames
      /** Pull secrets skipped or broken, in pod order. */
      secretProblems: SecretProblem[]
      /** Pull secrets that loaded, in pod order, with the registries each holds credentials for. */
      secretsLoaded: Array<{ name: string; registries: string[] }>
    }

export async function assess(options: AssessOptions, subject: PodSubject, signal: AbortSignal): Promise<Assessment> {
  return completeAssessment(options, await prepareAssessment(options, subject, signal), subject, signal)
}

/**
 * For one image, what assess reaches before any registry is asked: an outcome that needs no
 * registry (invalid, exempt, blocked, …), or the question to ask it: this reference with these
 * credentials, in the kubelet's order. The audit plans its pass by these questions.
 */
export type ImagePlan =
  | { kind: 'done'; outcome: ImageOutcome }
  | {
      kind: 'ask'
      use: ImageUse
      ref: ImageReference
      credentials: Credential[]
      plugins: ProvidedCredentials | undefined
      /** A short name on CRI-O nodes: how it resolved, and the names to try after `ref` when it does not pull. */
      shortName?: PlannedShortName
      /** Names (canonical) whose signatures the nodes' policy checks once the manifest is found. */
      verify?: ReadonlyMap<string, PolicyMatch>
    }

/** A short name's candidates in CRI-O's order: the first not skipped is the plan's `ref`, the others follow it. */
export interface PlannedShortName {
  written: string
  via: 'alias' | 'search'
  origin: string
  /** Every candidate, in order, and for those not to be asked why (blocked, rejected by policy). */
  candidates: Array<{ ref: ImageReference; skipped?: string }>
}

/** Everything assess reads about a subject before the registry: its mode, secrets and a plan per distinct image. */
export type PreparedAssessment =
  | { mode: 'exempt' }
  | { mode: 'off'; modeNote: string | undefined }
  | {
      mode: Mode
      modeNote: string | undefined
      secretNames: PullSecretNames
      secretProblems: SecretProblem[]
      secretsLoaded: Array<{ name: string; registries: string[] }>
      /** Some secret or the service account could not be read: a refusal may not be the last word. */
      incomplete: boolean
      cluster: readonly Platform[]
      candidates: readonly Platform[]
      /** By image string: the same image in two containers is one question. */
      plans: ReadonlyMap<string, ImagePlan>
    }

export async function prepareAssessment(
  options: AssessOptions,
  subject: PodSubject,
  signal: AbortSignal,
): Promise<PreparedAssessment> {
  if (options.exemptNamespaces?.has(subject.namespace) === true) return { mode: 'exempt' }
  const ns = await options.modes.modeFor(subject.namespace, signal)
  if (ns.mode === 'off') return { mode: 'off', modeNote: ns.note }

  const [secretNames, cluster] = await Promise.all([
    pullSecretNames(subject, options.serviceAccounts, signal),
    options.clusterPlatforms?.platforms(signal) ?? Promise.resolve([]),
  ])
  const keyring = await loadPullKeyring(options.secrets, subject.namespace, secretNames.names, {
    signal,
    extraEntries: options.nodeCredentials?.entries() ?? [],
  })
  const images = distinct(subject.images)
  const plans = await pool(images, { limit: MAX_PARALLEL_IMAGES }, async (use): Promise<ImagePlan> => {
    const done = (outcome: ImageOutcome): ImagePlan => ({ kind: 'done', outcome })
    const parsed = tryParseReference(use.image)
    if (!parsed.ok) return done({ kind: 'invalid', use, problem: parsed.error.message })
    // CRI-O nodes: a short name is whatever registries.conf makes of it, tried in order.
    const resolution = options.pullRules?.shortName?.(use.image) ?? { kind: 'qualified' }
    if (resolution.kind === 'ambiguous' || resolution.kind === 'unresolvable')
      return done({ kind: 'short-name', use, resolution })
    const names = resolution.kind === 'qualified' ? [parsed.ref] : resolution.candidates
    // Before exemptions and secrets: whatever else is configured, nothing is sent there.
    for (const name of names) {
      const metadata = metadataHostProblem(name.registryHost)
      if (metadata !== undefined) return done({ kind: 'metadata-host', use, problem: metadata })
    }
    const exempt = options.exemptImages?.match(parsed.ref)
    if (exempt !== undefined) return done({ kind: 'exempt', use, pattern: exempt })
    // No credential or registry changes a blocked pull, nor one the signature policy rejects: say
    // so without asking anyone. CRI-O goes on to a short name's next candidate.
    const candidates = names.map((ref) => {
      const blocked = options.pullRules?.blocked(ref)
      if (blocked !== undefined) return { ref, blocked, skipped: 'RegistryBlocked' }
      const signature = beforeAsking(options.signaturePolicies?.forImage(subject.namespace, ref), ref)
      if (signature.kind === 'refused') return { ref, refused: signature.finding, skipped: 'SignatureRejected' }
      return { ref, ...(signature.kind === 'verify' ? { verify: signature.match } : {}) }
    })
    const open = candidates.filter((c) => c.skipped === undefined)
    if (open.length === 0) {
      const first = candidates[0]!
      if (first.refused !== undefined)
        return done({ kind: 'signature-refused', use, ref: first.ref, finding: first.refused })
      return done({ kind: 'blocked', use, ref: first.ref, ...first.blocked! })
    }
    const verify = new Map(open.flatMap((c) => (c.verify === undefined ? [] : [[c.ref.canonical, c.verify] as const])))
    // One server for the whole pod, so every container's fix writes the secret the same way.
    if (keyring.fatal !== undefined) {
      const servers = domains(subject.images)
      return done({
        kind: 'broken-secret',
        use,
        problem: keyring.fatal,
        server: servers[0] ?? parsed.ref.domain,
        servers,
      })
    }
    // The kubelet's order: the pod's secrets, the node's docker config, then the plugins.
    // The account the pods will run as: the ServiceAccount admission plugin sets `default` when none is named.
    const plugins = await options.credentialProviders?.provide(parsed.ref.name, signal, {
      namespace: subject.namespace,
      serviceAccountName: subject.serviceAccountName ?? 'default',
    })
    // For a short name the kubelet matches secrets against docker.io/<name>, and CRI-O sends them to every candidate.
    const credentials = [...keyring.credentialsFor(parsed.ref.name), ...(plugins?.entries ?? [])]
    const shortName: PlannedShortName | undefined =
      resolution.kind === 'qualified'
        ? undefined
        : {
            written: resolution.written,
            via: resolution.kind,
            origin: resolution.origin,
            candidates: candidates.map(({ ref, skipped }) => ({ ref, ...(skipped === undefined ? {} : { skipped }) })),
          }
    return {
      kind: 'ask',
      use,
      ref: open[0]!.ref,
      credentials,
      plugins,
      ...(shortName === undefined ? {} : { shortName }),
      ...(verify.size === 0 ? {} : { verify }),
    }
  })
  return {
    mode: ns.mode,
    modeNote: ns.note,
    secretNames,
    secretProblems: keyring.problems,
    secretsLoaded: keyring.loaded.map((name) => ({ name, registries: keyring.registries.get(name) ?? [] })),
    incomplete: keyring.incomplete || secretNames.incomplete,
    cluster,
    candidates: podPlatforms(cluster, subject.scheduling),
    plans: new Map(images.map((use, i) => [use.image, plans[i]!])),
  }
}

/**
 * The assessment of `subject`'s images (all of them, or some: the audit judges each container on
 * its own) from what prepareAssessment read for it: each question asked of `options.checker`.
 */
export async function completeAssessment(
  options: Pick<AssessOptions, 'checker' | 'signaturePolicies'>,
  prepared: PreparedAssessment,
  subject: PodSubject,
  signal: AbortSignal,
): Promise<Assessment> {
  if (prepared.mode === 'exempt' || prepared.mode === 'off') return prepared
  const { incomplete, cluster, candidates } = prepared
  const images = distinct(subject.images)
  const found = await pool(images, { limit: MAX_PARALLEL_IMAGES }, async (use): Promise<ImageOutcome> => {
    const plan = prepared.plans.get(use.image)
    if (plan === undefined) throw new Error(`completeAssessment: image ${JSON.stringify(use.image)} was not prepared`)
    if (plan.kind === 'done') return plan.outcome
    const { credentials, plugins } = plan
    const { ref, result, shortName, signature } = await askInTurn(options, plan, subject.namespace, candidates, signal)
    const outcome: ImageOutcome = {
      kind: 'checked',
      use,
      ref,
      result,
      tried: credentials.map((c) => c.label),
      incomplete,
      ...(shortName === undefined ? {} : { shortName }),
      ...(signature === undefined ? {} : { signature }),
    }
    if (plugins !== undefined && plugins.failures.length > 0) outcome.providerFailures = plugins.failures
    if (plugins !== undefined && plugins.skipped.length > 0) outcome.providerSkips = plugins.skipped
    if (plugins !== undefined && plugins.matched.length > 0) {
      outcome.providers = plugins.matched
      outcome.providersReusableUntil = plugins.reusableUntil
    }
    if (result.code === 'Exists' && result.platforms !== undefined && candidates.length > 0) {
      outcome.platform = judgePlatforms(result.platforms, candidates)
      if (outcome.platform.verdict === 'none')
        outcome.platform.elsewhere = elsewhere(result.platforms, cluster, candidates)
    }
    if (result.code === 'RepositoryNotFound' && options.checker.catalog !== undefined) {
      const listed = await options.checker.catalog(ref, credentials, subject.namespace, signal)
      if ('repositories' in listed) outcome.repositorySuggestions = suggestRepositories(ref.path, listed.repositories)
      else if (listed.refused) outcome.catalogRefused = true
    }
    if (result.code === 'TagNotFound' && ref.tag !== undefined) {
      const tags = await options.checker.tags(ref, credentials, subject.namespace, signal)
      if (tags !== undefined) {
        outcome.suggestions = suggestTags(ref.tag, tags)
        const previous = previousReference(use.previous, ref)
        // A listing may stop short (pages, count, time): a tag missing from it is asked for directly.
        if (previous !== undefined)
          outcome.previousTagExists =
            tags.includes(previous.tag!) ||
            (await previousExists(options.checker, previous, credentials, subject.namespace, signal))
      }
    }
    return outcome
  })
  const byImage = new Map(images.map((use, i) => [use.image, found[i]!]))
  // One outcome per container: a person looks for their container's name in the message.
  const outcomes = subject.images.map((use) => ({ ...byImage.get(use.image)!, use }))
  const { mode, modeNote, secretNames, secretProblems, secretsLoaded } = prepared
  return { mode, modeNote, outcomes, secretNames, secretProblems, secretsLoaded }
}

/**
 * The plan's question, and for a short name each further candidate until one pulls, as CRI-O
 * tries them; a name under a signature policy pulls only if its signatures pass. None pulling: the
 * most telling answer (as for one image's credentials: an unanswered name first, since it might
 * have pulled).
 */
async function askInTurn(
  options: Pick<AssessOptions, 'checker' | 'signaturePolicies'>,
  plan: Extract<ImagePlan, { kind: 'ask' }>,
  namespace: string,
  platforms: readonly Platform[],
  signal: AbortSignal,
): Promise<Answer & { shortName?: ShortNameUse }> {
  const ask = async (ref: ImageReference): Promise<Answer> => {
    const result = await options.checker.check(ref, plan.credentials, namespace, signal)
    const match = plan.verify?.get(ref.canonical)
    if (result.code !== 'Exists' || match === undefined || options.signaturePolicies === undefined)
      return { ref, result }
    const signature = await verifyFound(
      options.checker,
      options.signaturePolicies,
      match,
      ref,
      result,
      plan.credentials,
      namespace,
      platforms,
      signal,
    )
    return { ref, result, signature }
  }
  const answers = [await ask(plan.ref)]
  const planned = plan.shortName
  if (planned === undefined) return answers[0]!
  // The first candidate not skipped was asked above; the others follow until one pulls.
  for (const { ref } of planned.candidates.filter((c) => c.skipped === undefined).slice(1)) {
    if (pulls(answers[answers.length - 1]!)) break
    answers.push(await ask(ref))
  }
  const last = answers[answers.length - 1]!
  const chosen = pulls(last) ? last : answers.reduce((best, a) => (rank(a) < rank(best) ? a : best))
  const said = new Map(answers.map((a) => [a.ref.canonical, code(a)]))
  const tried = planned.candidates
    .map((c) => ({ name: c.ref.canonical, code: c.skipped ?? said.get(c.ref.canonical) }))
    .filter((c): c is { name: string; code: string } => c.code !== undefined)
  return {
    ...chosen,
    shortName: { written: planned.written, via: planned.via, origin: planned.origin, tried },
  }
}

interface Answer {
  ref: ImageReference
  result: CheckResult
  signature?: SignatureFinding
}

function pulls(a: Answer): boolean {
  return a.result.code === 'Exists' && (a.signature === undefined || a.signature.verdict === 'accepted')
}

/** The answer's code, a signature verdict counting as what it means for the pull. */
function code(a: Answer): string {
  if (a.result.code !== 'Exists' || a.signature === undefined || a.signature.verdict === 'accepted')
    return a.result.code
  return a.signature.verdict === 'rejected' ? 'SignatureValidationFailed' : 'SignatureUnverified'
}

/** Lower says more: an unverified signature ranks with an unanswered registry, a rejected one with a missing tag. */
function rank(a: Answer): number {
  const c = code(a)
  if (c === 'SignatureUnverified') return answerRank('RegistryUnreachable')
  if (c === 'SignatureValidationFailed') return answerRank('TagNotFound')
  return answerRank(a.result.code)
}

/**
 * Images checked at once in one review. A pod with hundreds of images (generated manifests) must
 * not open hundreds of registry requests at once; the cache and single-flight make repeats cheap.
 */
const MAX_PARALLEL_IMAGES = 16

/**
 * How long assess() needs for `subject` when one image may take `perImageMs` (`pullguard check`'s
 * deadline for an object): its distinct images go MAX_PARALLEL_IMAGES at a time, and two periods
 * more for the API reads before the images and the tag listings after a missing tag.
 */
export function assessDeadlineMs(subject: PodSubject, perImageMs: number): number {
  const batches = Math.ceil(distinct(subject.images).length / MAX_PARALLEL_IMAGES)
  return perImageMs * (batches + 2)
}

/** The reference an UPDATE replaced, when the container had a tag of the same repository before. */
function previousReference(previous: string | undefined, ref: ImageReference): ImageReference | undefined {
  if (previous === undefined) return undefined
  const before = tryParseReference(previous)
  return before.ok && before.ref.name === ref.name && before.ref.digest === undefined && before.ref.tag !== undefined
    ? before.ref
    : undefined
}

/** true/false when the registry says so; undefined (say nothing) when it gave no clear answer. */
async function previousExists(
  checker: ImageChecker,
  ref: ImageReference,
  credentials: Parameters<ImageChecker['check']>[1],
  namespace: string,
  signal: AbortSignal,
): Promise<boolean | undefined> {
  const r = await checker.check(ref, credentials, namespace, signal)
  return r.code === 'Exists' ? true : r.code === 'TagNotFound' ? false : undefined
}

/** The registries of the images that parse, in order, once each. */
function domains(uses: readonly ImageUse[]): string[] {
  const out = new Set<string>()
  for (const u of uses) {
    const parsed = tryParseReference(u.image)
    if (parsed.ok) out.add(parsed.ref.domain)
  }
  return [...out]
}

/** Cluster platforms outside the pod's constraints that the index serves: where it could run instead. */
function elsewhere(
  index: readonly Platform[],
  cluster: readonly Platform[],
  candidates: readonly Platform[],
): Platform[] {
  const all = podPlatforms(cluster, { nodeSelector: {}, nodeSelectorTerms: [] })
  const excluded = all.filter((p) => !candidates.some((c) => formatPlatform(c) === formatPlatform(p)))
  const missing = judgePlatforms(index, excluded).missing.map(formatPlatform)
  return excluded.filter((p) => !missing.includes(formatPlatform(p)))
}

/** One check per image string: the same image in two containers is one question. */
function distinct(uses: readonly ImageUse[]): ImageUse[] {
  const seen = new Set<string>()
  return uses.filter((u) => {
    if (seen.has(u.image)) return false
    seen.add(u.image)
    return true
  })
}
