/**
 * Why an image reference was refused. Stable: messages, metrics and tests branch on it, never on text.
 * Every one of these means the kubelet would report `InvalidImageName` and never pull.
 */
export type InvalidReferenceReason =
  /** Nothing to parse. */
  | 'empty'
  /** Input longer than the parser's bound, or a repository path over 255 characters. */
  | 'too-long'
  /** Wrong overall shape: whitespace, a URL scheme, a bare image ID, no name before ":" or "@". */
  | 'invalid-format'
  /** Upper case in the repository path ("repository name must be lowercase"). */
  | 'uppercase-repository'
  /** The first component was taken as a registry host but is not host[:port]. */
  | 'invalid-domain'
  /** A path component breaks `[a-z0-9]+ (separator [a-z0-9]+)*`, or a component is empty. */
  | 'invalid-path'
  | 'invalid-tag'
  /** Malformed digest, or a known algorithm with the wrong length or case. */
  | 'invalid-digest'
  /** Well-formed digest whose algorithm go-digest does not know, so the runtime cannot verify it. */
  | 'unsupported-digest-algorithm'

/**
 * Input echoed into a message is cut to this many characters: the input comes from an untrusted pod
 * spec and may be kilobytes long; the message goes into an admission response and a log line.
 */
const MAX_INPUT_IN_MESSAGE = 200

export class InvalidReferenceError extends Error {
  readonly code = 'InvalidReference' as const
  readonly reason: InvalidReferenceReason
  /** The reference exactly as given. */
  readonly input: string
  /** What is wrong, without the `invalid image reference "…": ` prefix. */
  readonly detail: string

  constructor(input: string, reason: InvalidReferenceReason, detail: string) {
    super(`invalid image reference ${quoteInput(input)}: ${detail}`)
    this.name = 'InvalidReferenceError'
    this.reason = reason
    this.input = input
    this.detail = detail
  }
}

/** JSON quoting escapes control characters, so a hostile reference cannot forge log lines. */
function quoteInput(input: string): string {
  if (input.length <= MAX_INPUT_IN_MESSAGE) return JSON.stringify(input)
  return `${JSON.stringify(input.slice(0, MAX_INPUT_IN_MESSAGE))}… (${input.length} characters)`
}
