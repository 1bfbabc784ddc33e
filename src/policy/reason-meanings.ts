/**
 * Each reason code in one sentence, for reports that describe their rules (SARIF's rule
 * descriptions). The README's table says the same at length.
 */
import type { OutcomeReason } from './outcome.js'

export const REASON_MEANINGS: Readonly<Record<OutcomeReason, string>> = {
  Exists: 'The manifest is there and the credentials can read it.',
  TagNotFound: 'The repository exists but has no such tag.',
  DigestNotFound: 'The repository exists but has no manifest with this digest.',
  RepositoryNotFound: 'The registry says the repository does not exist.',
  RepositoryNotFoundOrDenied:
    'The registry granted no access: the repository does not exist or is private to other credentials.',
  AccessDenied: 'The registry refused the credentials, or requires a login none was given for.',
  PlatformMismatch: 'The image index has no entry for a platform the pod can run on.',
  RateLimited: 'The registry rate-limited the check (HTTP 429): the image was not verified.',
  RegistryUnreachable:
    'The registry gave no answer (DNS, connection, TLS, timeout or a 5xx): the image was not verified.',
  RegistryBlocked: "The nodes' registries.conf blocks this registry: CRI-O refuses the pull.",
  ShortNameAmbiguous: 'A short name that several search registries could resolve: CRI-O refuses it in enforcing mode.',
  ShortNameUnresolvable: 'A short name with no alias and no search registry: CRI-O cannot resolve it.',
  SignatureRejected: "The nodes' signature policy rejects every image of this scope.",
  SignatureValidationFailed: "The image's signatures do not meet the nodes' signature policy.",
  SignatureUnverified: 'The signature policy requires what could not be verified here: the image was not verified.',
  Schema1Unsupported: 'A Docker schema 1 manifest, which containerd 2.1 and later refuse to pull.',
  Schema1Unverified: 'A Docker schema 1 manifest, which containerd 2.0 pulls only when told to.',
  NeverPullRefused:
    "imagePullPolicy Never, and the nodes' kubelet gives the pod no copy its own credentials cannot pull.",
  MetadataHost: 'The registry host is a cloud metadata or link-local address, which no node pulls from.',
  Exempt: 'The image is exempt from checks.',
  InvalidReference: 'The image reference is not valid: no runtime can parse it.',
  PullSecretUnparseable: 'A pull secret the pod lists cannot be read, so the kubelet cannot use it.',
}
