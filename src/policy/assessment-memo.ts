/**
 * The warm path's shortcut: the same pod spec in the same namespace, asked again while nothing it
 * depends on has changed, gets the assessment made last time without re-reading secrets,
 * rebuilding the keyring or re-parsing images. A ReplicaSet creating 500 pods asks 500 times.
 *
 * An assessment is reused only while all of these hold, so a memo never answers differently
 * from a fresh assessment:
 * - the namespace's revision is the one read before the assessment started (any change to its
 *   pull secrets, service accounts or the Namespace object, seen by the watch, moves it; while the
 *   copies are not authoritative there is no revision and nothing is kept);
 * - the other inputs (the nodes' credentials, the cluster's platforms) are the same objects;
 * - every registry answer it used is still in the result cache (the memo expires with the first
 *   of them: an answer is never served past its own TTL);
 * - every credential provider answer it used is still cached by its provider;
 * - it holds nothing transient: no short name answered by a later candidate, no signature that
 *   did not pass, no API read failure, no unreadable service account, no secret
 *   problem (those are answered from short-lived memories of their own), no registry error.
 */
import { TtlCache, systemClock, type Clock } from '../cache/ttl-cache.js'
import type { CheckResult } from '../registry/result.js'
import type { PooledAssessment as Assessment } from './across-pools.js'
import type { PodSubject } from './subject.js'

export interface AssessmentMemoOptions {
  /** Changes whenever anything read about the namespace changes; undefined: do not keep anything. */
  revision(namespace: string): number | undefined
  /** The other inputs an assessment depends on, compared by identity. */
  inputs(): readonly unknown[]
  /** Until when the result cache serves `result`; undefined when it does not hold it. */
  expiresAt(result: CheckResult): number | undefined
  /** Bound on assessments kept (each is a few KB: keys come from pod specs). */
  maxEntries?: number
  clock?: Clock
}

/** What must be equal when the memo is read again, taken before the assessment starts. */
export interface MemoStamp {
  key: string
  revision: number
  inputs: readonly unknown[]
}

interface Entry {
  revision: number
  inputs: readonly unknown[]
  assessment: Assessment
}

export const DEFAULT_MEMO_ENTRIES = 4096
/** Pod specs with hundreds of containers are not the warm path; their keys would be most of the memory. */
const MAX_KEY_CHARS = 8192

export class AssessmentMemo {
  readonly #options: AssessmentMemoOptions
  readonly #entries: TtlCache<string, Entry>
  readonly #clock: Clock

  constructor(options: AssessmentMemoOptions) {
    this.#options = options
    this.#clock = options.clock ?? systemClock
    this.#entries = new TtlCache({ maxEntries: options.maxEntries ?? DEFAULT_MEMO_ENTRIES, clock: this.#clock })
  }

  get size(): number {
    return this.#entries.size
  }

  /**
   * The stamp for a subject: read before assessing it, passed to `keep` afterwards. Undefined when
   * nothing about it can be kept (no revision, oversized spec).
   */
  stamp(subject: PodSubject): MemoStamp | undefined {
    const revision = this.#options.revision(subject.namespace)
    if (revision === undefined) return undefined
    const key = memoKey(subject)
    if (key.length > MAX_KEY_CHARS) return undefined
    return { key, revision, inputs: this.#options.inputs() }
  }

  /** The assessment kept for this stamp's subject, if it is still what a fresh one would be. */
  get(stamp: MemoStamp): Assessment | undefined {
    const entry = this.#entries.get(stamp.key)
    if (entry === undefined) return undefined
    if (entry.revision !== stamp.revision || !sameInputs(entry.inputs, stamp.inputs)) {
      this.#entries.delete(stamp.key)
      return undefined
    }
    return entry.assessment
  }

  /** Keeps an assessment made after `stamp` was taken, if it may be kept, until its first answer expires. */
  keep(stamp: MemoStamp, assessment: Assessment): void {
    const expiresAt = this.#keepUntil(assessment)
    if (expiresAt === undefined) return
    this.#entries.set(stamp.key, { revision: stamp.revision, inputs: stamp.inputs, assessment }, expiresAt)
  }

  #keepUntil(a: Assessment): number | undefined {
    if (a.mode === 'exempt') return undefined
    if (a.modeNote !== undefined) return undefined
    if (a.mode === 'off') return this.#clock.now() + OFF_TTL_MS
    if (a.secretNames.incomplete || a.secretProblems.length > 0) return undefined
    // A pod bound to a node was held against that node's images, read for it alone.
    if (a.pools?.how === 'bound') return undefined
    let until = Number.POSITIVE_INFINITY
    for (const o of a.pools === undefined ? a.outcomes : a.pools.judged.flatMap((j) => j.outcomes)) {
      if (o.kind !== 'checked') continue
      if (o.incomplete) return undefined
      // Answers it does not hold the expiry of: the names a short name tried before (their negative
      // answers live seconds), and signatures that did not pass (often pushed just after the image).
      if ((o.shortName?.tried.length ?? 0) > 1) return undefined
      if (o.signature !== undefined && o.signature.verdict !== 'accepted') return undefined
      const expires = this.#options.expiresAt(o.result)
      if (expires === undefined) return undefined
      if (expires < until) until = expires
      // Plugin answers have lives of their own (their cacheDuration): kept no longer than they are.
      if (o.providers !== undefined) {
        const plugins = o.providersReusableUntil ?? 0
        if (plugins <= this.#clock.now()) return undefined
        if (plugins < until) until = plugins
      }
    }
    // Nothing checked (all invalid or exempt): it depends on the namespace's revision alone.
    return until === Number.POSITIVE_INFINITY ? this.#clock.now() + OFF_TTL_MS : until
  }
}

/** Assessments that used no registry answer are kept this long (the revision guards them anyway). */
const OFF_TTL_MS = 5 * 60_000

/**
 * Everything of a subject an assessment reads, and nothing it does not (uid, name, operation and
 * dryRun only shape the message, which is built afresh from the subject each time). An image's
 * previous value (UPDATE) is read for the fix.
 */
export function memoKey(s: PodSubject): string {
  // Length-prefixed fields: no value, whatever characters it holds, can pass for two others.
  let key = `${field(s.namespace)}${s.template ? 'T' : 'P'}${s.serviceAccountName === undefined ? '-' : field(s.serviceAccountName)}${s.pullSecrets.length};`
  for (const name of s.pullSecrets) key += field(name)
  key += `${s.images.length};`
  for (const u of s.images)
    key +=
      field(u.container) +
      field(u.kind) +
      field(u.field) +
      field(u.image) +
      (u.previous === undefined ? '-' : field(u.previous)) +
      (u.neverPulled === true ? 'N' : '')
  const { nodeSelector, nodeSelectorTerms, tolerations, nodeName } = s.scheduling
  if (
    nodeSelectorTerms.length > 0 ||
    Object.keys(nodeSelector).length > 0 ||
    tolerations !== undefined ||
    nodeName !== undefined
  )
    key += field(JSON.stringify([nodeSelector, nodeSelectorTerms, tolerations ?? [], nodeName ?? '']))
  return key
}

function field(value: string): string {
  return `${value.length}:${value}`
}

function sameInputs(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
