/**
 * A node's container runtime, as the kubelet reports it in status.nodeInfo.containerRuntimeVersion
 * (`containerd://2.1.4`, `cri-o://1.33.2`), and what each version does with a Docker schema 1
 * manifest.
 */

export interface RuntimeVersion {
  /** `containerd`, `cri-o`, `docker`, …: the part before `://`. */
  name: string
  /** major, minor, patch; undefined when the version does not read as one. */
  version: readonly [number, number, number] | undefined
  /** As reported. */
  raw: string
}

/** `containerd://2.1.4`, `containerd://v1.7.27-1`, `cri-o://1.33.2`; undefined for an empty or schemeless string. */
export function parseRuntime(raw: string): RuntimeVersion | undefined {
  const m = /^([a-z0-9.-]+):\/\/(.*)$/i.exec(raw.trim())
  if (m === null) return undefined
  const v = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(m[2]!)
  return {
    name: m[1]!.toLowerCase(),
    version: v === null ? undefined : [Number(v[1]), Number(v[2]), Number(v[3] ?? 0)],
    raw: raw.trim(),
  }
}

/**
 * A schema 1 manifest on this runtime (containerd RELEASES.md, "Pulling Schema 1 images: disabled
 * in v2.0, removed in v2.1"; core/transfer/local/pull.go and client/pull.go refuse it with "schema
 * 1 image manifests are no longer supported"):
 * - `refused`: containerd 2.1 and later, whatever its settings;
 * - `disabled`: containerd 2.0 refuses it unless started with
 *   CONTAINERD_ENABLE_DEPRECATED_PULL_SCHEMA_1_IMAGE=1, which pullguard cannot see;
 * - `pulled`: containerd 1.x, CRI-O (containers-image converts it), and any runtime or version
 *   pullguard cannot read: never deny on a guess.
 */
export type Schema1Support = 'pulled' | 'disabled' | 'refused'

export function schema1Support(runtime: RuntimeVersion | undefined): Schema1Support {
  if (runtime === undefined || runtime.name !== 'containerd' || runtime.version === undefined) return 'pulled'
  const [major, minor] = runtime.version
  if (major > 2 || (major === 2 && minor >= 1)) return 'refused'
  return major === 2 ? 'disabled' : 'pulled'
}

/** `containerd 2.1.4`: the runtime as messages name it. */
export function formatRuntime(runtime: RuntimeVersion): string {
  return runtime.version === undefined ? runtime.raw : `${runtime.name} ${runtime.version.join('.')}`
}
