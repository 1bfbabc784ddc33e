/**
 * How an audit pass judges a workload on the node pools it can land on: the pools that share one
 * assessment (same files, same platforms) are one group, asked through their node side's answers
 * (a question asked through one pool's mirrors or node credentials is not another's); a use's
 * finding waits until every group has judged it. Without pools there is one group, the options'
 * own.
 */
import type { Assessment, AssessOptions } from '../policy/assess.js'
import {
  onView,
  poolViews,
  viewOptions,
  withoutPools,
  type PoolOutcomes,
  type PoolView,
} from '../policy/across-pools.js'
import type { NodePools } from '../policy/node-pools.js'
import type { PodSubject } from '../policy/subject.js'
import type { ImageChecker } from '../registry/cached-checker.js'
import { PassAnswers, type QuestionResult } from './answers.js'
import type { AuditWorkload } from './workloads.js'

/** The pools a workload is judged on that share one assessment. */
export interface Group {
  /** The assess options of those pools (the options' own without pools). */
  options: AssessOptions
  /** The answers of their node side, whose prefix keeps the pass's question keys apart. */
  answers: PassAnswers
  prefix: string
  /** The pools, each held to its runtime and kubelet; undefined without pools. */
  views: PoolView[] | undefined
}

export interface PoolGroupsOptions {
  assess: AssessOptions
  pools?: NodePools
  /** How a pool's checker is asked by the audit. */
  checkerFor?: (checker: ImageChecker) => ImageChecker
  signal: AbortSignal
  timeoutMs: number
  onRequest: (host: string) => void
}

export class PoolGroups {
  readonly #o: PoolGroupsOptions
  readonly #sides = new Map<ImageChecker, { answers: PassAnswers; prefix: string }>()
  readonly #options = new Map<string, AssessOptions>()

  constructor(options: PoolGroupsOptions) {
    this.#o = options
  }

  /** The groups a workload is judged in: one without pools, one per distinct pool view with them. */
  async of(workload: AuditWorkload, signal: AbortSignal): Promise<Group[]> {
    const o = this.#o
    if (o.pools === undefined) return [{ options: o.assess, ...this.#side(o.assess.checker), views: undefined }]
    const groups = new Map<string, Group>()
    for (const view of poolViews(await o.pools.place(workload.subject.scheduling, signal), workload.subject)) {
      const known = groups.get(view.key)
      if (known !== undefined) {
        known.views!.push(view)
        continue
      }
      let viewed = this.#options.get(view.key)
      if (viewed === undefined) {
        const v = viewOptions(o.assess, view)
        this.#options.set(view.key, (viewed = { ...v, checker: o.checkerFor?.(v.checker) ?? v.checker }))
      }
      groups.set(view.key, { options: viewed, ...this.#side(viewed.checker), views: [view] })
    }
    return [...groups.values()]
  }

  /** The pass's question counts, every node side's added up. */
  results(): Record<QuestionResult, number> {
    const out: Record<QuestionResult, number> = { pullable: 0, 'not-pullable': 0, unverified: 0 }
    for (const { answers } of this.#sides.values()) {
      const r = answers.results()
      for (const k of Object.keys(out) as QuestionResult[]) out[k] += r[k] ?? 0
    }
    return out
  }

  #side(checker: ImageChecker): { answers: PassAnswers; prefix: string } {
    let side = this.#sides.get(checker)
    if (side === undefined) {
      side = {
        answers: new PassAnswers(checker, {
          signal: this.#o.signal,
          timeoutMs: this.#o.timeoutMs,
          onRequest: this.#o.onRequest,
        }),
        prefix: `${this.#sides.size}\u0001`,
      }
      this.#sides.set(checker, side)
    }
    return side
  }
}

/** One use of one workload, judged in each of its groups: whole once every group has answered. */
export class Join {
  #waiting: number
  readonly #judged: PoolOutcomes[] = []
  /** The workload, its one-image subject and assessment as last judged. */
  #last: { workload: AuditWorkload; subject: PodSubject; found: Assessment } | undefined

  constructor(groups: number) {
    this.#waiting = groups
  }

  /**
   * One group's judgement (undefined: the workload or use is gone). The whole once this was the
   * last: the last assessment, and the outcomes on each pool (undefined without pools).
   */
  record(
    group: Group,
    judged: { workload: AuditWorkload; subject: PodSubject; found: Assessment } | undefined,
  ):
    | { workload: AuditWorkload; subject: PodSubject; found: Assessment; pools: PoolOutcomes[] | undefined }
    | undefined {
    if (judged !== undefined && judged.found.mode !== 'exempt' && judged.found.mode !== 'off') {
      this.#last = judged
      const outcomes = judged.found.outcomes
      if (group.views === undefined)
        this.#judged.push({ pool: '', runtimes: [], outcomes: withoutPools(outcomes, undefined) })
      else for (const view of group.views) this.#judged.push(onView(view, outcomes))
    }
    if (--this.#waiting > 0 || this.#last === undefined) return undefined
    const { workload, subject, found } = this.#last
    if (found.mode === 'exempt' || found.mode === 'off') return undefined
    // One pool (or none): its outcomes, held to its runtime and kubelet, are the assessment's.
    const only = this.#judged.length === 1 ? this.#judged[0]!.outcomes : found.outcomes
    return {
      workload,
      subject,
      found: { ...found, outcomes: only },
      pools: group.views === undefined || this.#judged.length < 2 ? undefined : this.#judged,
    }
  }
}
