/**
 * The questions of one audit pass and their answers. A question is what decides a registry's
 * answer: the image reference and the credentials the kubelet would try for it, by value and in
 * order. Copies of one pull secret in many namespaces are one credential, and the nodes' own
 * credentials or a plugin's answer are one for every pod they apply to, so 40 000 container uses
 * of 50 images may be 50 questions.
 *
 * Each question is asked of the registry once a pass; every use that asks it gets the answer in the
 * words of its own credentials (relabelResult). Only the registry's answer is shared: whether a
 * secret could be read, what a plugin failed to give, the platforms a pod may land on stay each
 * workload's own (assess's), so a credential that fails in one namespace marks no other.
 */
import { setMaxListeners } from 'node:events'
import type { ImageReference } from '../reference/index.js'
import type { ImageChecker } from '../registry/cached-checker.js'
import type { FoundManifest } from '../registry/client.js'
import { credentialIdentity, type Credential } from '../registry/credential.js'
import { relabelResult } from '../registry/relabel.js'
import type { CheckResult } from '../registry/result.js'
import type { AttachmentsRead } from '../registry/sigstore-attachments.js'
import type { IndexInstances } from '../registry/index-platforms.js'

/** The image and the credentials' identities (never their values), in the kubelet's order. */
export function questionKey(ref: ImageReference, credentials: readonly Credential[]): string {
  return keyOf(ref.canonical, credentials)
}

/** `what` and the credentials' identities, one flat string. */
function keyOf(what: string, credentials: readonly Credential[]): string {
  return [what, ...credentials.map((c) => credentialIdentity(c))].join('\n')
}

/** A manifest found, read again: its digest, where it was found and with which of the credentials. */
function foundKey(ref: ImageReference, credentials: readonly Credential[], found: FoundManifest): string {
  const decided = credentials.findIndex((c) => c.label === found.decidedBy)
  return keyOf(`${ref.name}@${found.digest}\n${found.answeredBy ?? ''}\n${decided}`, credentials)
}

export type QuestionResult = 'pullable' | 'not-pullable' | 'unverified'

/** A question's result is the registry's answer alone (a use may still differ: a platform, a secret pullguard could not read). */
export function questionResult(answer: CheckResult): QuestionResult {
  switch (answer.code) {
    case 'Exists':
      return 'pullable'
    case 'RateLimited':
    case 'RegistryUnreachable':
      return 'unverified'
    default:
      return 'not-pullable'
  }
}

interface Entry {
  /** The labels of the credentials it was asked with: the answer's words. */
  labels: readonly string[]
  answer: Promise<CheckResult>
  settled: CheckResult | undefined
}

export interface PassAnswersOptions {
  /** The pass's: once it aborts, nothing more is asked. */
  signal: AbortSignal
  /** How long one question may take (--timeout). */
  timeoutMs: number
  /** Told of each request made to a registry host: a manifest check or a tag listing. */
  onRequest?: (host: string) => void
}

export class PassAnswers implements ImageChecker {
  readonly #inner: ImageChecker
  readonly #options: PassAnswersOptions
  readonly #entries = new Map<string, Entry>()
  readonly #catalogs = new Map<string, Promise<{ repositories: readonly string[] } | { refused: boolean }>>()
  readonly #tags = new Map<string, Promise<readonly string[] | undefined>>()
  readonly #attachments = new Map<string, Promise<AttachmentsRead>>()
  readonly #instances = new Map<string, Promise<IndexInstances>>()

  /** `inner`: asks the registry afresh (the audit's checker). */
  constructor(inner: ImageChecker, options: PassAnswersOptions) {
    this.#inner = inner
    this.#options = options
  }

  /** The answer to a question asked already in this pass and settled, if any. */
  settled(key: string): CheckResult | undefined {
    return this.#entries.get(key)?.settled
  }

  /** An answer reached without a request (a host the pass could not reach in its window). */
  put(key: string, credentials: readonly Credential[], answer: CheckResult): void {
    this.#entries.set(key, {
      labels: credentials.map((c) => c.label),
      answer: Promise.resolve(answer),
      settled: answer,
    })
  }

  /** The distinct questions of the pass so far, by result (those still unanswered are not counted). */
  results(): Record<QuestionResult, number> {
    const counts: Record<QuestionResult, number> = { pullable: 0, 'not-pullable': 0, unverified: 0 }
    for (const e of this.#entries.values()) if (e.settled !== undefined) counts[questionResult(e.settled)]++
    return counts
  }

  async check(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    _signal?: AbortSignal,
  ): Promise<CheckResult> {
    const key = questionKey(ref, credentials)
    let entry = this.#entries.get(key)
    if (entry === undefined) {
      const made: Entry = {
        labels: credentials.map((c) => c.label),
        answer: this.#ask(ref, credentials, namespace).then((a) => (made.settled = a)),
        settled: undefined,
      }
      this.#entries.set(key, (entry = made))
    }
    // Each caller waits for the one question: its own deadline is the question's, so one use's
    // short deadline never hands the others a timeout.
    const answer = await entry.answer
    return relabelResult(
      answer,
      entry.labels,
      credentials.map((c) => c.label),
    )
  }

  /** A repository's tags, listed once a pass for everyone with the same credentials. */
  tags(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    _signal?: AbortSignal,
  ): Promise<readonly string[] | undefined> {
    const key = keyOf(ref.name, credentials)
    let listed = this.#tags.get(key)
    if (listed === undefined) {
      listed = this.#inner.tags(ref, credentials, namespace, this.#deadline()).finally(() => this.#asked(ref))
      this.#tags.set(key, listed)
    }
    return listed
  }

  /** A registry's catalog (a missing repository's suggestion), read once a pass per registry and credentials. */
  catalog(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    _signal?: AbortSignal,
  ): Promise<{ repositories: readonly string[] } | { refused: boolean }> {
    const inner = this.#inner.catalog
    if (inner === undefined) return Promise.resolve({ refused: false })
    return this.#once(this.#catalogs, keyOf(ref.registryHost, credentials), ref, () =>
      inner.call(this.#inner, ref, credentials, namespace, this.#deadline()),
    )
  }

  /** A manifest's signatures (signature policies), read once a pass for everyone with the same credentials. */
  sigstoreAttachments(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    found: FoundManifest,
    _signal?: AbortSignal,
  ): Promise<AttachmentsRead> {
    return this.#once(this.#attachments, foundKey(ref, credentials, found), ref, () =>
      this.#inner.sigstoreAttachments(ref, credentials, namespace, found, this.#deadline()),
    )
  }

  /** An index's platform manifests, read once a pass for everyone with the same credentials. */
  indexInstances(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    found: FoundManifest,
    _signal?: AbortSignal,
  ): Promise<IndexInstances> {
    return this.#once(this.#instances, foundKey(ref, credentials, found), ref, () =>
      this.#inner.indexInstances(ref, credentials, namespace, found, this.#deadline()),
    )
  }

  #once<T>(memory: Map<string, Promise<T>>, key: string, ref: ImageReference, ask: () => Promise<T>): Promise<T> {
    let answer = memory.get(key)
    if (answer === undefined) {
      answer = ask().finally(() => this.#asked(ref))
      memory.set(key, answer)
    }
    return answer
  }

  #ask(ref: ImageReference, credentials: readonly Credential[], namespace: string): Promise<CheckResult> {
    return this.#inner.check(ref, credentials, namespace, this.#deadline()).finally(() => this.#asked(ref))
  }

  /** Told once answered, so a host that answered is already known to the metrics by then. */
  #asked(ref: ImageReference): void {
    this.#options.onRequest?.(ref.registryHost)
  }

  #deadline(): AbortSignal {
    const signal = AbortSignal.any([this.#options.signal, AbortSignal.timeout(this.#options.timeoutMs)])
    setMaxListeners(0, signal)
    return signal
  }
}
