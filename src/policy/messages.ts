/**
 * Every sentence a developer reads from pullguard is built here, from reason codes. A denial line
 * says which container, which image, what the registry said, which secrets were tried (names
 * only), and the fix. Warnings are the short form, one line each.
 */
import type { Platform } from '../registry/index.js'
import type { SecretProblem } from '../credentials/pull-secrets.js'
import { pullability, type ImageOutcome } from './outcome.js'

export interface MessageContext {
  namespace: string
  /** `pod team-a/web-x2x9q`, `deployment team-b/api`. */
  object: string
}

type Checked = Extract<ImageOutcome, { kind: 'checked' }>

function what(o: ImageOutcome): string {
  return `${o.use.kind === 'volume' ? 'image volume' : 'container'} "${o.use.container}"`
}

function where(o: ImageOutcome): string {
  return `${what(o)} (${o.use.field}) image "${o.use.image}"`
}

function platforms(list: readonly Platform[]): string {
  return list.map((p) => `${p.os}/${p.architecture}${p.variant === undefined ? '' : '/' + p.variant}`).join(', ')
}

/** The name pullguard proposes for a new pull secret for `server` (an image's registry domain). */
export function pullSecretNameFor(server: string): string {
  return ('pull-' + server.replace(/[^a-z0-9]+/gi, '-').replace(/^-+|-+$/g, '').toLowerCase()).slice(0, 253)
}

/** `kubectl create secret docker-registry NAME …` for `server`; kubectl's default server is Docker Hub's. */
export function createSecretCommand(name: string, server: string, namespace: string): string {
  const dockerServer = server === 'docker.io' ? '' : ` --docker-server=${server}`
  return `kubectl create secret docker-registry ${name}${dockerServer} --docker-username=USER --docker-password=PASSWORD -n ${namespace}`
}

function secretCommand(server: string, namespace: string): string {
  const name = pullSecretNameFor(server)
  return `${createSecretCommand(name, server, namespace)}, then list "${name}" in imagePullSecrets (of the pod template, or of its service account)`
}

function tried(o: Checked): string {
  return o.tried.length === 0 ? 'no pull secret matches this registry, so the pull is anonymous' : `tried ${o.tried.join(', ')}`
}

function tagFix(o: Checked): string {
  const s = o.suggestions ?? []
  return s.length === 0 ? 'push that tag or use one that exists' : `existing tags nearest to it: ${s.join(', ')}`
}

/** What is wrong and how to fix it, for a denial (one line per image). */
export function explain(o: ImageOutcome, ctx: MessageContext): string {
  if (o.kind === 'exempt') return `${where(o)}: exempt by --exempt-image ${o.pattern}.`
  if (o.kind === 'invalid') return `${where(o)}: ${o.problem} (the kubelet reports InvalidImageName). Fix: correct the image reference.`
  if (o.kind === 'metadata-host') return `${where(o)}: registry host ${o.problem}; no node can pull an image from there, and pullguard sends no request to it. Fix: use the image's real registry.`
  if (o.kind === 'broken-secret') {
    return `${where(o)}: pull secret "${o.problem.secret}" cannot be parsed (${o.problem.detail}); the kubelet fails every image pull of these pods while it is listed. Fix: recreate it with kubectl create secret docker-registry, or remove it from imagePullSecrets.`
  }
  const { ref, result } = o
  const repo = `${ref.domain}/${ref.path}`
  switch (result.code) {
    case 'TagNotFound':
      return `${where(o)}: tag "${ref.reference}" does not exist in ${repo}. Fix: ${tagFix(o)}.`
    case 'DigestNotFound':
      return `${where(o)}: digest ${ref.reference} does not exist in ${repo}. Fix: use a digest that exists (it may have been deleted).`
    case 'RepositoryNotFound':
      return `${where(o)}: repository ${repo} does not exist. Fix: check the image name for typos.`
    case 'RepositoryNotFoundOrDenied':
      if (pullability(o) === 'unknown') return `${where(o)}: could not be verified: ${undetermined(o)}.`
      return o.tried.length === 0
        ? `${where(o)}: ${ref.registryHost} says repository ${ref.path} does not exist or requires authorization (${tried(o)}). Fix: check the name; if it is private: ${secretCommand(ref.domain, ctx.namespace)}.`
        : `${where(o)}: ${ref.registryHost} says repository ${ref.path} does not exist or the account may not pull it (${tried(o)}). Fix: check the name, and that the account in that secret has pull access to ${ref.path}.`
    case 'AccessDenied':
      if (pullability(o) === 'unknown') return `${where(o)}: could not be verified: ${undetermined(o)}.`
      return o.tried.length === 0
        ? `${where(o)}: ${ref.registryHost} requires credentials and ${tried(o)}. Fix: ${secretCommand(ref.domain, ctx.namespace)}.`
        : `${where(o)}: ${ref.registryHost} refused the credentials (${tried(o)}). Fix: update the secret's username/password or create a new one: ${secretCommand(ref.domain, ctx.namespace)}.`
    case 'RateLimited':
    case 'RegistryUnreachable':
      return `${where(o)}: could not be verified: ${undetermined(o)}.`
    case 'Exists':
      if (o.platform?.verdict === 'none') {
        return `${where(o)}: no entry for ${platforms(o.platform.missing)} in the image index (it has ${platforms(o.platform.available) || 'no platform entries'}); the kubelet reports "no match for platform in manifest". Fix: publish the image for that platform, or schedule onto nodes it supports (nodeSelector kubernetes.io/arch).`
      }
      return `${where(o)}: pullable (${result.digest}).`
  }
}

function undetermined(o: Checked): string {
  const r = o.result
  if (r.code === 'RateLimited') return `${o.ref.registryHost} is rate limiting${r.retryAfterSeconds === undefined ? '' : ` (retry after ${r.retryAfterSeconds}s)`}`
  if (r.code === 'RegistryUnreachable') return `${o.ref.registryHost} is unreachable (${r.cause}: ${r.detail})`
  if (o.providerFailures !== undefined && o.providerFailures.length > 0) {
    return `${o.ref.registryHost} refused the credentials pullguard had (${o.tried.length === 0 ? 'none' : o.tried.join(', ')}), and ${pluginFailures(o)}; the kubelet's plugin may still give credentials on the node`
  }
  return `${o.ref.registryHost} refused the credentials pullguard could read (${o.tried.length === 0 ? 'none' : o.tried.join(', ')}), and some pull secrets or the service account could not be read by pullguard; the kubelet may still pull with them (grant pullguard get on secrets and serviceaccounts)`
}

/** `credential provider plugin ecr-credential-provider exited with status 1`, each failed plugin once. */
function pluginFailures(o: Checked): string {
  return (o.providerFailures ?? []).map((f) => f.problem).join('; ')
}

/** The one-line form, for warnings. */
export function warning(o: ImageOutcome, suffix: string): string {
  const head = `${what(o)} image "${o.use.image}"`
  if (o.kind === 'exempt') return `${head}: exempt by --exempt-image ${o.pattern}${suffix}`
  if (o.kind === 'invalid') return `${head}: ${o.problem}${suffix}`
  if (o.kind === 'metadata-host') return `${head}: registry host ${o.problem}; no request was sent${suffix}`
  if (o.kind === 'broken-secret') return `${head}: pull secret "${o.problem.secret}" cannot be parsed; the kubelet will fail this pull${suffix}`
  switch (o.result.code) {
    case 'TagNotFound': {
      const s = o.suggestions ?? []
      return `${head}: tag "${o.ref.reference}" not found in ${o.ref.domain}/${o.ref.path}${s.length > 0 ? ` (try ${s.join(', ')})` : ''}${suffix}`
    }
    case 'DigestNotFound':
      return `${head}: digest not found in ${o.ref.domain}/${o.ref.path}${suffix}`
    case 'RepositoryNotFound':
      return `${head}: repository does not exist${suffix}`
    case 'RepositoryNotFoundOrDenied':
    case 'AccessDenied':
      if (pullability(o) === 'unknown') return `${head}: not verified, ${o.providerFailures !== undefined && o.providerFailures.length > 0 ? pluginFailures(o) : 'some pull secrets could not be read by pullguard'}${suffix}`
      return o.result.code === 'AccessDenied'
        ? `${head}: ${o.ref.registryHost} refused access (${plural(o.tried.length, 'secret')} tried)${suffix}`
        : `${head}: repository does not exist or requires credentials (${plural(o.tried.length, 'secret')} tried)${suffix}`
    case 'RateLimited':
    case 'RegistryUnreachable':
      return `${head}: not verified, ${undetermined(o)}${suffix}`
    case 'Exists':
      if (o.platform?.verdict === 'none') return `${head}: no ${platforms(o.platform.missing)} entry in the image index${suffix}`
      return `${head}: pullable${suffix}`
  }
}

/** A warning given whatever the verdict, or undefined. */
export function note(o: ImageOutcome): string | undefined {
  if (o.kind === 'exempt') return warning(o, '')
  if (o.kind === 'checked' && o.result.code === 'Exists' && o.platform?.verdict === 'some') {
    return `${what(o)} image "${o.use.image}": no ${platforms(o.platform.missing)} entry in the image index; pods scheduled on such nodes will fail to pull`
  }
  return undefined
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
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
  return `pull secrets skipped: ${problems.map((p) => `"${p.secret}" (${PROBLEM_WORDS[p.kind]})`).join(', ')}`
}
