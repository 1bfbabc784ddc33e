export {
  RegistryClient,
  answerRank,
  summarize,
  type CheckOptions,
  type FoundManifest,
  type RegistryClientOptions,
} from './client.js'
export { credentialIdentity, type Credential } from './credential.js'
export { parseIndexPlatforms, type IndexPlatforms } from './index-platforms.js'
export { isIndexMediaType, isSchema1MediaType, MANIFEST_ACCEPT } from './media-types.js'
export type { Attempt, CheckResult, Platform, ReasonCode, UnreachableCause } from './result.js'
export { buildTrustStore, type TrustOptions, type TrustStore } from './trust.js'
export { DEFAULT_TAG_LIST_BUDGET_MS, type ListTagsClientOptions } from './client.js'
export { listTags, parseNextLink, parseTagPage, type ListTagsOptions, type TagList, type TagSource } from './tags.js'
export { attachmentTag, type AttachmentsRead, type SigstoreAttachment } from './sigstore-attachments.js'
