/**
 * Why the Kubernetes API cannot be used, said once in words an operator can act on, then quiet:
 * the watched copies retry with back-off, and repeating the same warning every few seconds would
 * only bury its cause. Said again only when the cause changes, or after the API came back.
 *
 * The text is built from the error's code and status only, never its message, which may quote a
 * response body.
 */
import type { KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'

export type ApiProblemCode =
  | 'NoKubeconfig'
  | 'Refused'
  | 'Unresolvable'
  | 'Unreachable'
  | 'Tls'
  | 'Unauthorized'
  | 'Forbidden'
  | 'ApiError'

export interface ApiProblem {
  code: ApiProblemCode
  text: string
}

/** What was being done when it failed, for the text: `list`, `secrets`. */
export interface ApiAttempt {
  verb: string
  resource: string
}

/**
 * client-node's loadFromDefault falls back to this made-up cluster when it finds no KUBECONFIG,
 * no ~/.kube/config and no in-cluster service account (config.js, loadFromDefault).
 */
export function kubeconfigFound(kc: KubeConfig): boolean {
  const cluster = kc.getCurrentCluster()
  return !(
    cluster?.name === 'cluster' &&
    cluster.server === 'http://localhost:8080' &&
    kc.getCurrentUser()?.name === 'user'
  )
}

const TLS_CODES = /^(CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|ERR_TLS_|ERR_SSL_|EPROTO$)/

/** A pure function of the error's status or code: table-tested. */
export function describeApiProblem(err: unknown, server: string, attempt: ApiAttempt, found = true): ApiProblem {
  if (!found) {
    return {
      code: 'NoKubeconfig',
      text: 'no kubeconfig found (KUBECONFIG is unset, ~/.kube/config does not exist, and there is no in-cluster service account token): set KUBECONFIG, or run pullguard in the cluster with its service account',
    }
  }
  const status = statusOf(err)
  if (status === 401)
    return {
      code: 'Unauthorized',
      text: `the API server at ${server} refused pullguard's credentials (401 Unauthorized): the token or client certificate in the kubeconfig is invalid or expired`,
    }
  if (status === 403) {
    return {
      code: 'Forbidden',
      text: `pullguard may not ${attempt.verb} ${attempt.resource} (403 Forbidden): its ClusterRole must grant get, list and watch on ${attempt.resource} (manifests/base/clusterrole.yaml)`,
    }
  }
  if (status !== undefined)
    return {
      code: 'ApiError',
      text: `the API server at ${server} answered HTTP ${status} to ${attempt.verb} ${attempt.resource}`,
    }
  const code = errnoOf(err)
  if (code === 'ECONNREFUSED')
    return { code: 'Refused', text: `connection refused at ${server}: is the API server running there?` }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return { code: 'Unresolvable', text: `the API server's host in ${server} cannot be resolved (${code})` }
  if (code !== undefined && TLS_CODES.test(code))
    return { code: 'Tls', text: `TLS with ${server} failed (${code}): check the kubeconfig's certificate-authority` }
  return {
    code: 'Unreachable',
    text: `no answer from the API server at ${server}${code === undefined ? '' : ` (${code})`}`,
  }
}

function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const e = err as { statusCode?: unknown; code?: unknown }
  // client-node's ApiException carries the HTTP status as `code`; some paths use `statusCode`.
  for (const v of [e.statusCode, e.code]) if (typeof v === 'number' && v >= 100 && v < 600) return v
  return undefined
}

function errnoOf(err: unknown): string | undefined {
  // node-fetch's FetchError has the system error's code; undici/Node nest it under `cause`.
  for (
    let e = err, depth = 0;
    typeof e === 'object' && e !== null && depth < 4;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && code !== '') return code
  }
  return undefined
}

/**
 * Shared by every watched copy of one process, so one cause (a refused connection) is said once,
 * not once per copy; a cause that belongs to one copy (403 on secrets) is cleared only by that copy.
 */
export class ApiTrouble {
  readonly #logger: Logger
  readonly #server: string
  readonly #found: boolean
  /** Each cause said, with the copies still failing for it. */
  readonly #said = new Map<string, Set<string>>()

  constructor(kubeConfig: KubeConfig, logger: Logger) {
    this.#logger = logger
    this.#server = kubeConfig.getCurrentCluster()?.server ?? '(no server)'
    this.#found = kubeconfigFound(kubeConfig)
  }

  /** A failed attempt of copy `who`: a warning the first time its cause is seen, debug after that. */
  failed(who: string, err: unknown, attempt: ApiAttempt, retryInMs: number): void {
    const problem = describeApiProblem(err, this.#server, attempt, this.#found)
    const fields = { reason: problem.code, server: this.#server, retryInMs }
    for (const [text, copies] of this.#said) if (text !== problem.text) this.#forget(text, copies, who)
    const copies = this.#said.get(problem.text)
    if (copies !== undefined) {
      copies.add(who)
      this.#logger.debug({ ...fields, cache: who }, `Kubernetes API still unusable: ${problem.text}`)
      return
    }
    this.#said.set(problem.text, new Set([who]))
    this.#logger.warn(fields, `Kubernetes API cannot be used: ${problem.text}; retrying quietly with back-off`)
  }

  /** Copy `who` listed: its causes are over; once none is left, that is said once. */
  recovered(who: string): void {
    if (this.#said.size === 0) return
    for (const [text, copies] of this.#said) this.#forget(text, copies, who)
    if (this.#said.size === 0) this.#logger.info({ server: this.#server }, 'Kubernetes API usable again')
  }

  #forget(text: string, copies: Set<string>, who: string): void {
    copies.delete(who)
    if (copies.size === 0) this.#said.delete(text)
  }
}
