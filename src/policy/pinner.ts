/**
 * The mutating webhook's decision (opt-in): which of a pod's images to pin to the digest the
 * registry gave for its tag. The pod is assessed as the judge assesses it, through the same memo
 * and checker, so the answers are the ones the validating webhook then reads from the cache. A
 * pinner never refuses anything and never fails a request: whatever goes wrong leaves the pod as
 * written, and the validating webhook judges it as ever.
 */
import { assessOnce, reviewFields, type JudgeOptions } from './judge.js'
import { pinsFor, type Pin } from './pins.js'
import type { PodSubject, RequestFields } from './subject.js'

export type Pinner = (subject: PodSubject, request?: RequestFields) => Promise<Pin[]>

export function createPinner(options: Omit<JudgeOptions, 'onDecision'>): Pinner {
  return async (subject, request) => {
    const about = reviewFields(subject, request)
    try {
      const found = await assessOnce(options, subject)
      // Exempt and off namespaces are not checked, so nothing there is verified.
      if (found.mode === 'exempt' || found.mode === 'off') {
        options.logger.info({ ...about, pinned: [], mode: found.mode }, 'pin')
        return []
      }
      const perPool = found.pools === undefined ? [found.outcomes] : found.pools.judged.map((j) => j.outcomes)
      const { pins, skipped } = pinsFor(subject.images, perPool)
      options.logger.info(
        {
          ...about,
          pinned: pins.map((p) => ({ field: p.use.field, from: p.from, to: p.to })),
          ...(skipped.length === 0 ? {} : { left: skipped.map((s) => ({ field: s.use.field, why: s.why })) }),
        },
        'pin',
      )
      return pins
    } catch (err) {
      options.logger.error({ ...about, err }, 'internal error while pinning; the pod is left as written')
      return []
    }
  }
}
