import { createHmac, randomBytes } from 'node:crypto'

/**
 * A username/password the kubelet would send for an image. Pull secrets only ever give the
 * kubelet these two fields (registry-semantics §3), so that is all a credential is here.
 * `label` says where it came from (secret name and key) for messages; it never holds a value.
 */
export interface Credential {
  readonly username: string
  readonly password: string
  readonly label: string
}

/** How an attempt without credentials is named in results. */
export const ANONYMOUS = 'anonymous'

/**
 * containerd sends Basic (to a registry or a token realm) only with a non-empty secret
 * (remotes/docker/auth/fetch.go, authorizer.go); an entry with an empty password pulls anonymously
 * from token registries and cannot answer a Basic challenge.
 */
export function hasBasicCredentials(credential: Credential): boolean {
  return credential.username !== '' && credential.password !== ''
}

const identities = new WeakMap<object, string>()
/**
 * Keyed per process: a plain hash of a password can be brute-forced offline from a heap dump or a
 * core file; an HMAC under a key that exists only in this process's memory cannot be precomputed.
 */
const IDENTITY_KEY = randomBytes(32)

/**
 * A stable, non-reversible identity for cache and single-flight keys: two namespaces holding
 * the same secret value share it, and nothing can read the value back out of a key.
 */
export function credentialIdentity(credential: Credential | null): string {
  if (credential === null) return ANONYMOUS
  let id = identities.get(credential)
  if (id === undefined) {
    id = identityOf(credential)
    identities.set(credential, id)
  }
  return id
}

/**
 * `copy` holds the username and password of `original` (the same pull secret copied into another
 * namespace): it gets the same identity string, one HMAC and one copy in memory for all of them.
 */
export function shareIdentity(copy: Credential, original: Pick<Credential, 'username' | 'password'>): void {
  let id = identities.get(original)
  if (id === undefined) {
    id = identityOf(original)
    identities.set(original, id)
  }
  identities.set(copy, id)
}

function identityOf(credential: Pick<Credential, 'username' | 'password'>): string {
  return createHmac('sha256', IDENTITY_KEY)
    .update(credential.username)
    .update('\0')
    .update(credential.password)
    .digest('hex')
}

export function basicAuthorization(credential: Credential): string {
  return 'Basic ' + Buffer.from(`${credential.username}:${credential.password}`).toString('base64')
}
