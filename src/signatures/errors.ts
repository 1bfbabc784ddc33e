/** A node runtime's signature configuration pullguard could not read: which file, and what is wrong. */
export class SignaturePolicyError extends Error {
  constructor(
    readonly code: 'PolicyInvalid' | 'RegistriesDInvalid',
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`)
    this.name = 'SignaturePolicyError'
  }
}
