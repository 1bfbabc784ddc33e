/**
 * What a command refuses before doing any work. Each is printed by the CLI on one line and exits
 * with status 2: the user's input is wrong, not the cluster or a registry.
 */

/** A flag or environment variable with a value we cannot use; `flag` names it as the user wrote it. */
export class ConfigError extends Error {
  readonly code = 'InvalidConfig'
  constructor(
    readonly flag: string,
    problem: string,
  ) {
    super(`${flag}: ${problem}`)
    this.name = 'ConfigError'
  }
}

/** What a one-shot command was asked to read (a pod, a namespace, the workloads) cannot be read. */
export class TargetError extends Error {
  readonly code = 'TargetUnreadable'
  override name = 'TargetError'
}

/** A manifest given to `check` that cannot be read or parsed. */
export class InputError extends Error {
  readonly code = 'InvalidInput'
  override name = 'InputError'
}

/** The errors a command reports as bad input (exit 2), as opposed to a failure of its own. */
export function isUsageError(err: unknown): err is ConfigError | TargetError | InputError {
  return err instanceof ConfigError || err instanceof TargetError || err instanceof InputError
}
