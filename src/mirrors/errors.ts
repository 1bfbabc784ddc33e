/** A node runtime's registry configuration pullguard could not read: which file, and what is wrong. */
export class MirrorConfigError extends Error {
  constructor(
    readonly code: 'HostsFileInvalid' | 'HostsDirUnreadable' | 'RegistriesConfInvalid' | 'CrioConfigInvalid',
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`)
    this.name = 'MirrorConfigError'
  }
}
