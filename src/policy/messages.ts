/**
 * Every sentence a developer reads from pullguard is built here, from reason codes, with the fix
 * from fixes.ts. A denial entry says which containers, which images, what the registry said,
 * which secrets were tried (names only), and the fix; containers with the same cause and the same
 * fix share one entry. Warnings are the short form, one line each, within the API server's length.
 */
import type { SecretProblem } from '../credentials/pull-secrets.js'
import { ambiguousReason } from '../mirrors/short-names.js'
import type { ProviderSkip } from '../providers/providers.js'
import type { SignatureFinding } from './signature-check.js'
import { annotationKeys, fixFor, fixLines, renderFix, type Fix, type FixTarget } from './fixes.js'
import { pullability, type ImageOutcome, type Pullability } from './outcome.js'
import { formatPlatform, type Platform } from './platforms.js'

/**
 * The API server keeps a warning whole up to 256 characters (longer ones are cut once the
 * response's warnings pass 4 KiB: k8s.io/apiserver endpoints/filters/warning.go), and kubectl
 * prints each on one line.
 */
export const MAX_WARNING_LENGTH = 256

type Checked = Extract<ImageOutcome, { kind: 'checked' }>

/** Outcomes with the same cause and fix, said once. */
export interface OutcomeGroup {
  outcomes: ImageOutcome[]
  pullability: Pullability
  /** What is wrong, without which container: the same for every outcome of the group. */
  problem: string
  fix: Fix | undefined
}

function what(o: ImageOutcome): string {
  return `${o.use.kind === 'volume' ? 'image volume' : 'container'} "${o.use.container}"`
}

function platforms(list: readonly Platform[]): string {
  return list.map(formatPlatform).join(', ')
}

function tried(o: Checked): string {
  return o.tried.length === 0
    ? 'no pull secret matches this registry, so the pull is anonymous'
    : `tried ${o.tried.join(', ')}`
}

/** What is wrong with one image, as a clause. */
export function problem(o: ImageOutcome): string {
  if (o.kind === 'exempt') return `exempt by --exempt-image ${o.pattern}`
  if (o.kind === 'invalid') return `${o.problem} (the kubelet reports InvalidImageName)`
  if (o.kind === 'metadata-host')
    return `registry host ${o.problem}; no node can pull an image from there, and pullguard sends no request to it`
  if (o.kind === 'blocked' && o.runtime === 'containerd')
    return `${o.ref.name} cannot be pulled on the nodes: containerd cannot configure the hosts of ${o.prefix} from ${o.file} (${o.problem}), so every pull from that registry fails`
  if (o.kind === 'blocked' && o.problem !== undefined)
    return `${o.ref.name} cannot be pulled on the nodes: ${o.file} has a [[registry]] with prefix "${o.prefix}" whose location the runtime cannot use (${o.problem}), so every pull under it fails`
  if (o.kind === 'blocked')
    return `${o.ref.name} is blocked on the nodes: ${o.file} has a [[registry]] with prefix "${o.prefix}" and blocked = true, so the runtime refuses to pull it`
  if (o.kind === 'broken-secret')
    return `pull secret "${o.problem.secret}" cannot be parsed (${o.problem.detail}); the kubelet fails every image pull of these pods while it is listed`
  if (o.kind === 'short-name') return shortNameProblem(o)
  if (o.kind === 'signature-refused')
    return `${o.ref.canonical} is refused by the nodes' signature policy: ${policyWhere(o.finding)} requires "${o.finding.requirement ?? 'reject'}" (${o.finding.reason}), so CRI-O reports SignatureValidationFailed and the pod never starts`
  const { ref, result } = o
  const repo = `${ref.domain}/${ref.path}`
  const asked = askedNote(o) + shortNameNote(o)
  switch (result.code) {
    case 'TagNotFound':
      return `tag "${ref.reference}" does not exist in ${repo}${asked}${neverRefused(o)}`
    case 'DigestNotFound':
      return `digest ${ref.reference} does not exist in ${repo}${asked}${neverRefused(o)}`
    case 'RepositoryNotFound':
      return `repository ${repo} does not exist${asked}${neverRefused(o)}`
    case 'RepositoryNotFoundOrDenied':
      if (pullability(o) === 'unknown') return `could not be verified: ${undetermined(o)}`
      return o.tried.length === 0
        ? `${ref.registryHost} says repository ${ref.path} does not exist or requires authorization (${tried(o)})${asked}${skipsNote(o)}`
        : `${ref.registryHost} says repository ${ref.path} does not exist or the account may not pull it (${tried(o)})${asked}${skipsNote(o)}`
    case 'AccessDenied':
      if (pullability(o) === 'unknown') return `could not be verified: ${undetermined(o)}`
      return (
        (o.tried.length === 0
          ? o.use.neverPulled === true
            ? `${ref.registryHost} requires credentials and no pull secret of this pod matches it`
            : `${ref.registryHost} requires credentials and ${tried(o)}`
          : `${ref.registryHost} refused the credentials (${tried(o)})`) +
        asked +
        skipsNote(o) +
        (o.use.neverPulled === true && o.neverPull !== undefined
          ? `; with imagePullPolicy Never the nodes' kubelet (imagePullCredentialsVerificationPolicy ${o.neverPull.policy}) gives a pod a copy on the node only if a record of its own credentials pulling it matches, so every node reports ErrImageNeverPull ("Container image "${o.use.image}" is not present with pull policy of Never")`
          : '')
      )
    case 'RateLimited':
    case 'RegistryUnreachable':
      return `could not be verified: ${undetermined(o)}`
    case 'Exists':
      if (o.schema1 !== undefined) return schema1Problem(o, o.schema1)
      if (o.signature !== undefined && o.signature.verdict !== 'accepted') return signatureProblem(o, o.signature)
      if (o.platform?.verdict === 'none') {
        return `no entry for ${platforms(o.platform.missing)} in the image index (it has ${platforms(o.platform.available) || 'no platform entries'}); the kubelet reports "no match for platform in manifest"`
      }
      return `pullable (${result.digest})`
  }
}

/** `imagePullPolicy: Never` for an image the registry lacks, on nodes that verify every copy. */
function neverRefused(o: Checked): string {
  if (o.use.neverPulled !== true || o.neverPull?.kind !== 'refused') return ''
  return `; with imagePullPolicy Never the nodes' kubelet (imagePullCredentialsVerificationPolicy ${o.neverPull.policy}) gives a pod only a copy it pulled itself, which it cannot have pulled from there, and refuses a preloaded one, so every node reports ErrImageNeverPull`
}

/** A Docker schema 1 manifest on nodes whose containerd refuses it (2.1+) or may (2.0). */
function schema1Problem(o: Checked, s: NonNullable<Checked['schema1']>): string {
  const what = `${o.ref.canonical} (${o.result.code === 'Exists' ? o.result.digest : o.ref.reference}) is a Docker schema 1 manifest`
  const on = joined(s.runtimes)
  if (s.verdict === 'refused')
    return `${what}, which ${on} refuses ("schema 1 image manifests are no longer supported": containerd removed schema 1 pulls in 2.1)`
  return `pullable, but ${what}: ${on} pulls it only if started with CONTAINERD_ENABLE_DEPRECATED_PULL_SCHEMA_1_IMAGE=1 (2.0) and never from 2.1 on`
}

/** `/etc/containers/policy.json, scope "quay.io/team"`: where the requirement that decided was written. */
function policyWhere(f: SignatureFinding): string {
  const scope =
    f.scope === 'default' ? 'its default' : f.scope === '' ? 'its default for docker images' : `scope "${f.scope}"`
  return `${f.file} (${scope})`
}

/** A manifest found whose signatures the nodes' policy refuses, or that pullguard cannot check. */
function signatureProblem(o: Checked, f: SignatureFinding & { verdict: 'rejected' | 'unverifiable' }): string {
  const what = `${o.ref.canonical} (${f.digest ?? 'manifest'})`
  if (f.verdict === 'unverifiable')
    return `could not be verified: the nodes' signature policy ${policyWhere(f)} checks ${what} with ${f.requirement ?? 'a signature requirement'}: ${f.reason}`
  const off =
    f.attachmentsOff === undefined
      ? ''
      : `; registries.d does not set use-sigstore-attachments for ${f.attachmentsOff}, so the runtime reads no sigstore signature there, signed or not`
  return `${what} is refused by the nodes' signature policy ${policyWhere(f)}: ${f.reason}${off} (CRI-O reports SignatureValidationFailed)`
}

type ShortName = Extract<ImageOutcome, { kind: 'short-name' }>

/** A short name CRI-O refuses, with its reason as the runtime gives it. */
function shortNameProblem(o: ShortName): string {
  const r = o.resolution
  if (r.kind === 'unresolvable')
    return `short name "${r.written}" cannot be resolved by the nodes' CRI-O: ${r.problem}; the pull fails`
  return `short name "${r.written}" is ambiguous on the nodes' CRI-O: short_name_mode is enforcing and ${r.origin} lists ${r.candidates.length} unqualified-search registries (${r.candidates.map((c) => c.domain).join(', ')}), so CRI-O refuses the pull ("${ambiguousReason(o.use.image)}"; the pod shows ImageInspectError or ErrImagePull)`
}

/** For a short name that resolved: the name it became, how, and what the names before it said. */
export function shortNameNote(o: Checked): string {
  const s = o.shortName
  if (s === undefined) return ''
  const others = s.tried.filter((t) => t.name !== o.ref.canonical).map((t) => `${t.name}: ${t.code}`)
  const how = s.via === 'alias' ? `an alias in ${s.origin}` : `the unqualified-search registries of ${s.origin}`
  return ` (short name "${s.written}" became ${o.ref.canonical} by ${how}${others.length > 0 ? `; also tried: ${others.join(', ')}` : ''})`
}

/**
 * With mirrors, which hosts were asked (in the runtime's order), unless it was only the image's own
 * registry: a person must see that the answer came from, or was missing at, the mirrors.
 */
function askedNote(o: Checked): string {
  const asked = o.result.asked
  if (asked === undefined || asked.length === 0 || (asked.length === 1 && asked[0] === o.ref.registryHost)) return ''
  return ` (asked ${asked.join(', then ')}, as the nodes' runtime does)`
}

/** Each host that gave no answer, with why: `mirror.internal:5000: refused, registry-1.docker.io: timeout`. */
function hostFailures(o: Checked): string | undefined {
  const byHost = new Map<string, string>()
  for (const a of o.result.attempts) {
    if (a.host === undefined || byHost.has(a.host)) continue
    if (a.code === 'RegistryUnreachable') byHost.set(a.host, a.cause ?? 'no answer')
    else if (a.code === 'RateLimited') byHost.set(a.host, 'rate limited')
    else byHost.set(a.host, a.code)
  }
  return byHost.size < 2 ? undefined : [...byHost].map(([h, why]) => `${h}: ${why}`).join(', ')
}

function undetermined(o: Checked): string {
  const r = o.result
  const hosts = r.code === 'RateLimited' || r.code === 'RegistryUnreachable' ? hostFailures(o) : undefined
  if (hosts !== undefined) return `no host the nodes pull ${o.ref.domain} from answered (${hosts})`
  // A registries.conf rewrite may send the whole pull to one other host: name that one.
  const where = r.asked?.length === 1 ? r.asked[0]! : o.ref.registryHost
  if (r.code === 'RateLimited')
    return `${where} is rate limiting${r.retryAfterSeconds === undefined ? '' : ` (retry after ${r.retryAfterSeconds}s)`}${askedNote(o)}`
  if (r.code === 'RegistryUnreachable') return `${where} is unreachable (${r.cause}: ${r.detail})${askedNote(o)}`
  if (o.providerFailures !== undefined && o.providerFailures.length > 0) {
    return `${o.ref.registryHost} refused the credentials pullguard had (${o.tried.length === 0 ? 'none' : o.tried.join(', ')}), and ${pluginFailures(o)}; the kubelet's plugin may still give credentials on the node`
  }
  return `${o.ref.registryHost} refused the credentials pullguard could read (${o.tried.length === 0 ? 'none' : o.tried.join(', ')}), and some pull secrets or the service account could not be read by pullguard; the kubelet may still pull with them (grant pullguard get on secrets and serviceaccounts)`
}

/**
 * For a refusal, each plugin that matched but was not run, and why: on the node the kubelet skips
 * it without a word on the pod (plugin.go logs it at verbosity 5), so this is the only place a
 * person learns that the plugin's credentials never took part.
 */
function skipsNote(o: Checked): string {
  return (o.providerSkips ?? []).map((s) => `; ${skipClause(s)}`).join('')
}

function skipClause(s: ProviderSkip): string {
  if (s.reason === 'NoServiceAccount')
    return `credential provider ${s.provider} was not run: it requires a service account (requireServiceAccount) and the pod has none; the kubelet skips it too`
  const one = s.missing.length === 1
  return `credential provider ${s.provider} was not run: service account ${s.namespace}/${s.serviceAccount} lacks annotation${one ? '' : 's'} ${annotationKeys(s.missing)}, which the provider requires (requiredServiceAccountAnnotationKeys); the kubelet skips it too, logging why only at verbosity 5`
}

/** The same in a few words, for a warning (its fix names the account and the annotation). */
function shortSkips(o: Checked): string {
  return (o.providerSkips ?? [])
    .map(
      (s) =>
        `; plugin ${s.provider} not run (${s.reason === 'NoServiceAccount' ? 'no service account' : 'annotation missing'})`,
    )
    .join('')
}

/** `credential provider plugin ecr-credential-provider exited with status 1`, each failed plugin once. */
function pluginFailures(o: Checked): string {
  return (o.providerFailures ?? []).map((f) => f.problem).join('; ')
}

/**
 * The outcomes in order of first appearance, those with the same cause and fix together. Without
 * a target only pullable outcomes can be grouped (there is nothing to fix).
 */
export function groupOutcomes(outcomes: readonly ImageOutcome[], target: FixTarget | undefined): OutcomeGroup[] {
  const groups = new Map<string, OutcomeGroup>()
  for (const o of outcomes) {
    if (target === undefined && pullability(o) !== 'pullable')
      throw new Error('groupOutcomes: a fix target is needed when an image is not pullable')
    const fix = target === undefined ? undefined : fixFor(o, target)
    const p = pullability(o)
    const text = problem(o)
    const key = `${p}\u0000${text}\u0000${fix === undefined ? '' : fixLines(fix).join('\n')}`
    const group = groups.get(key)
    if (group === undefined) groups.set(key, { outcomes: [o], pullability: p, problem: text, fix })
    else group.outcomes.push(o)
  }
  return [...groups.values()]
}

function joined(parts: readonly string[]): string {
  return parts.length <= 1 ? (parts[0] ?? '') : `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`
}

/** Containers named in full in one entry; the rest by name only, up to NAMES_PER_ENTRY. */
const FULL_PER_ENTRY = 3
const NAMES_PER_ENTRY = 10

/** `container "api" (spec.containers[0]) image "…"`, for each container of the group (many: the first few in full). */
function who(g: OutcomeGroup): string {
  const full = g.outcomes.map((o) => `${what(o)} (${o.use.field}) image "${o.use.image}"`)
  if (full.length <= FULL_PER_ENTRY + 1) return joined(full)
  const rest = g.outcomes.slice(FULL_PER_ENTRY)
  const names = rest
    .slice(0, NAMES_PER_ENTRY)
    .map((o) => `"${o.use.container}"`)
    .join(', ')
  return `${full.slice(0, FULL_PER_ENTRY).join(', ')} and ${rest.length} more (${names}${rest.length > NAMES_PER_ENTRY ? ', …' : ''})`
}

/** One denial entry: who, what is wrong, and the fix. */
export function explainGroup(g: OutcomeGroup): string {
  return `${explainProblem(g)}${g.fix === undefined ? '' : renderFix(g.fix)}`
}

/** What is wrong without the fix, for reports that set the fix apart. */
export function explainProblem(g: OutcomeGroup): string {
  return `${who(g)}: ${g.problem}.`
}

/** The short clause for a warning. */
function shortProblem(o: ImageOutcome): string {
  if (o.kind === 'exempt') return `exempt by --exempt-image ${o.pattern}`
  if (o.kind === 'invalid') return o.problem
  if (o.kind === 'metadata-host') return `registry host ${o.problem}; no request was sent`
  if (o.kind === 'blocked' && o.runtime === 'containerd')
    return `containerd cannot load a file named in ${o.file}; every pull from ${o.prefix} fails`
  if (o.kind === 'blocked' && o.problem !== undefined)
    return `${o.file} (prefix "${o.prefix}") rewrites it to no valid name; every pull under it fails`
  if (o.kind === 'blocked') return `blocked by ${o.file} (prefix "${o.prefix}"); the runtime refuses to pull it`
  if (o.kind === 'broken-secret')
    return `pull secret "${o.problem.secret}" cannot be parsed; the kubelet will fail this pull`
  if (o.kind === 'signature-refused')
    return `refused by the signature policy in ${o.finding.file}; the runtime will not pull it`
  if (o.kind === 'short-name')
    return o.resolution.kind === 'ambiguous'
      ? `ambiguous short name on CRI-O (short_name_mode enforcing, ${o.resolution.candidates.length} search registries)`
      : 'short name CRI-O cannot resolve'
  switch (o.result.code) {
    case 'TagNotFound':
      return `tag "${o.ref.reference}" not found in ${o.ref.domain}/${o.ref.path}`
    case 'DigestNotFound':
      return `digest not found in ${o.ref.domain}/${o.ref.path}`
    case 'RepositoryNotFound':
      return `repository does not exist`
    case 'RepositoryNotFoundOrDenied':
    case 'AccessDenied':
      if (pullability(o) === 'unknown')
        return `not verified, ${o.providerFailures !== undefined && o.providerFailures.length > 0 ? pluginFailures(o) : 'some pull secrets could not be read by pullguard'}`
      return (
        (o.result.code === 'AccessDenied'
          ? `${o.ref.registryHost} ${o.tried.length === 0 ? 'requires credentials (none matched)' : `refused the credentials (${o.tried.length} tried)`}`
          : `repository does not exist or requires credentials (${o.tried.length === 0 ? 'none matched' : `${o.tried.length} tried`})`) +
        shortSkips(o)
      )
    case 'RateLimited':
    case 'RegistryUnreachable':
      return `not verified, ${undetermined(o)}`
    case 'Exists':
      if (o.schema1?.verdict === 'refused')
        return `Docker schema 1 manifest, which ${joined(o.schema1.runtimes)} refuses`
      if (o.signature?.verdict === 'rejected') return `signatures refused by the policy in ${o.signature.file}`
      if (o.signature?.verdict === 'unverifiable')
        return `not verified against the signature policy in ${o.signature.file}: ${o.signature.reason}`
      if (o.platform?.verdict === 'none') return `no ${platforms(o.platform.missing)} entry in the image index`
      return 'pullable'
  }
}

function shortWho(g: OutcomeGroup): string {
  const images = [...new Set(g.outcomes.map((o) => o.use.image))]
  if (g.outcomes.length === 1) return `${what(g.outcomes[0]!)} image "${images[0]}"`
  const names = g.outcomes.map((o) => `"${o.use.container}"`).join(', ')
  return images.length === 1
    ? `containers ${names} image "${images[0]}"`
    : `containers ${names} (images ${images.map((i) => `"${i}"`).join(', ')})`
}

/** The containers by name only, or only how many. */
function shorterWho(g: OutcomeGroup): string[] {
  const names =
    g.outcomes.length === 1
      ? what(g.outcomes[0]!)
      : `containers ${g.outcomes.map((o) => `"${o.use.container}"`).join(', ')}`
  return g.outcomes.length === 1 ? [names] : [names, `${g.outcomes.length} containers`]
}

function cut(text: string, length: number): string {
  return text.length <= length ? text : text.slice(0, Math.max(0, length - 1)) + '…'
}

/**
 * The one-line form of a group, for warnings: the fix as its command when that fits the API
 * server's length, else in words.
 */
export function groupWarning(g: OutcomeGroup, suffix: string): string {
  const clause = `${shortProblem(g.outcomes[0]!)}${suffix}`
  const whos = [shortWho(g), ...shorterWho(g)]
  const fix = g.fix === undefined ? '' : `; fix: ${g.fix.short}`
  const commands = g.fix?.steps.filter((s) => s.command !== undefined) ?? []
  const candidates = [
    ...(commands.length === 1 && g.fix!.steps.length === 1
      ? [`${whos[0]}: ${clause}; fix: ${commands[0]!.command}`]
      : []),
    // Long image or container names give way first: the cause and the fix stay.
    ...whos.map((w) => `${w}: ${clause}${fix}`),
  ]
  const fits = candidates.find((c) => c.length <= MAX_WARNING_LENGTH)
  if (fits !== undefined) return fits
  // Still too long (very long hosts or names): the cause is cut, never the fix.
  const head = `${whos[whos.length - 1]}: `
  return cut(head + cut(clause, MAX_WARNING_LENGTH - head.length - fix.length) + fix, MAX_WARNING_LENGTH)
}

/** The warnings given whatever the verdict (none for most images). */
export function notes(o: ImageOutcome): string[] {
  if (o.kind === 'exempt') return [`${what(o)} image "${o.use.image}": exempt by --exempt-image ${o.pattern}`]
  if (o.kind !== 'checked') return []
  const out: string[] = []
  // A node's status.images is refreshed every 30 s by the kubelet, and holds the 50 largest images.
  if (o.notOnNode !== undefined)
    out.push(
      `${what(o)} image "${o.use.image}" (imagePullPolicy Never): node ${o.notOnNode} does not list it in status.images (at most 50 images, refreshed every 30 s); if it is not there the kubelet reports ErrImageNeverPull`,
    )
  if (o.schema1?.verdict === 'uncertain')
    out.push(
      `${what(o)} image "${o.use.image}": a Docker schema 1 manifest, which ${joined(o.schema1.runtimes)}${o.pool === undefined ? '' : ` on node pool ${o.pool}`} pulls only if started with CONTAINERD_ENABLE_DEPRECATED_PULL_SCHEMA_1_IMAGE=1 (2.1 and later never): push it again as OCI`,
    )
  if (o.neverPull?.kind === 'cached')
    out.push(
      `${what(o)} image "${o.use.image}" (imagePullPolicy Never, ${o.neverPull.policy}${o.pool === undefined ? '' : ` on node pool ${o.pool}`}): the kubelet gives this pod ${o.neverPull.needs}, else ErrImageNeverPull`,
    )
  if (o.result.code === 'Exists' && o.platform?.verdict === 'some' && o.use.neverPulled !== true)
    out.push(
      `${what(o)} image "${o.use.image}": no ${platforms(o.platform.missing)} entry in the image index; pods scheduled on such nodes will fail to pull`,
    )
  return out
}

const PROBLEM_WORDS: Record<SecretProblem['kind'], string> = {
  missing: 'not found',
  forbidden: 'pullguard may not read it',
  error: 'could not be read',
  'wrong-type': 'not a docker-registry secret',
  unparseable: 'does not parse',
}

/** All skipped pull secrets in one line, names and why in a word or three. */
export function secretProblemsWarning(problems: readonly SecretProblem[]): string | undefined {
  if (problems.length === 0) return undefined
  return `pull secrets skipped: ${problems.map((p) => `"${p.secret}" (${p.kind === 'wrong-type' && p.type !== undefined ? `type ${p.type}, not a docker-registry secret` : PROBLEM_WORDS[p.kind]})`).join(', ')}`
}
