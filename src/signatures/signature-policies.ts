/**
 * The nodes' signature policy as CRI-O applies it to a pull: `<--signature-policy-dir>/<namespace>.json`
 * where it exists (CRI-O's signature_policy_dir), else `--signature-policy` (its signature_policy,
 * or /etc/containers/policy.json), with `--registries-d` saying where sigstore signatures are kept.
 * Every file (the policies, registries.d's *.yaml, the keys they name) is read at start, kept in
 * memory and read again when one changes. A bad new version keeps the last good one and says so;
 * the first read failing is a start-up error, as a pull on the node would fail.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { ImageReference } from '../reference/index.js'
import { Reloading } from '../reload/reloading.js'
import { SignaturePolicyError } from './errors.js'
import { parsePolicy, requirementsFor, type Requirement, type SignaturePolicy } from './policy.js'
import { parseRegistriesD, useSigstoreAttachments, type RegistriesD } from './registries-d.js'

const MAX_FILE_BYTES = 256 * 1024
/** A namespace's policy file is `<namespace>.json`: namespaces are DNS labels. */
const NAMESPACE_FILE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.json$/

export interface SignaturePolicySource {
  /** The policy every pull is checked against (CRI-O's signature_policy, or /etc/containers/policy.json). */
  file?: string
  /** CRI-O's signature_policy_dir: `<namespace>.json` there is that namespace's policy. */
  dir?: string
  /** containers-image's registries.d: where sigstore signatures are looked up. */
  registriesD?: string
}

/** The requirements a pull in a namespace meets, and where they were written. */
export interface PolicyMatch {
  file: string
  /** The policy scope that matched (`''`: the docker transport's default; `default`: the policy's). */
  scope: string
  requirements: Requirement[]
}

interface Snapshot {
  main: SignaturePolicy | undefined
  byNamespace: Map<string, SignaturePolicy>
  registriesD: RegistriesD
  files: string[]
}

export class SignaturePolicies {
  readonly #files: Reloading<Snapshot>

  /** Reads every file once; one that cannot be read or parsed is a SignaturePolicyError. */
  constructor(source: SignaturePolicySource, logger: Logger, options: { watch?: boolean } = {}) {
    this.#files = new Reloading({
      read: () => read(source),
      files: (last) => watched(source, last),
      logger,
      what: 'signature policy',
      summary: (s) => summary(source, s),
      ...(options.watch === undefined ? {} : { watch: options.watch }),
    })
  }

  /** Changes whenever the files behind the answers do: part of every memo of a verdict. */
  get generation(): number {
    return this.#files.generation
  }

  /** The requirements for a pull of `ref` in `namespace`, or undefined when no policy applies. */
  forImage(namespace: string, ref: ImageReference): PolicyMatch | undefined {
    const s = this.#files.current
    const policy = s.byNamespace.get(namespace) ?? s.main
    if (policy === undefined) return undefined
    return { file: policy.file, ...requirementsFor(policy, ref) }
  }

  /** Whether the runtime reads sigstore attachments for a pull from `physical` (the repository it pulls from). */
  useSigstoreAttachments(physical: ImageReference): boolean {
    return useSigstoreAttachments(this.#files.current.registriesD, physical)
  }

  reload(): void {
    this.#files.reload()
  }

  close(): void {
    this.#files.close()
  }
}

function summary(source: SignaturePolicySource, s: Snapshot): Record<string, unknown> {
  return {
    signaturePolicy: source.file,
    signaturePolicyDir: source.dir,
    namespacePolicies: [...s.byNamespace.keys()],
    registriesD: source.registriesD,
  }
}

/** The files whose change means a new read: those read last time, and the folders whose entries may come and go. */
function watched(source: SignaturePolicySource, last: Snapshot | undefined): string[] {
  const files = [source.file, source.dir, source.registriesD].filter((f): f is string => f !== undefined)
  if (source.dir !== undefined) files.push(...list(source.dir, (n) => NAMESPACE_FILE.test(n)))
  if (source.registriesD !== undefined) files.push(...list(source.registriesD, (n) => n.endsWith('.yaml')))
  return [...new Set([...files, ...(last?.files ?? [])])]
}

function list(dir: string, keep: (name: string) => boolean): string[] {
  try {
    return readdirSync(dir)
      .filter(keep)
      .sort()
      .map((n) => join(dir, n))
  } catch {
    return []
  }
}

function readText(path: string, code: SignaturePolicyError['code']): string {
  try {
    if (statSync(path).size > MAX_FILE_BYTES)
      throw new SignaturePolicyError(code, path, `larger than ${MAX_FILE_BYTES} bytes`)
    return readFileSync(path, 'utf8')
  } catch (err) {
    if (err instanceof SignaturePolicyError) throw err
    throw new SignaturePolicyError(
      code,
      path,
      `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    )
  }
}

function read(source: SignaturePolicySource): Snapshot {
  const files: string[] = []
  // A key that will not load rejects the signatures under its requirement, as on the node (policy.ts).
  const keyFiles = (path: string): Buffer => {
    files.push(path)
    if (statSync(path).size > MAX_FILE_BYTES) throw new Error(`${path}: larger than ${MAX_FILE_BYTES} bytes`)
    return readFileSync(path)
  }
  const load = (path: string): SignaturePolicy => {
    files.push(path)
    return parsePolicy(path, readText(path, 'PolicyInvalid'), keyFiles)
  }
  const main = source.file === undefined ? undefined : load(source.file)
  const byNamespace = new Map<string, SignaturePolicy>()
  if (source.dir !== undefined) {
    for (const path of list(source.dir, (n) => NAMESPACE_FILE.test(n)))
      byNamespace.set(path.slice(source.dir.length + 1, -'.json'.length), load(path))
  }
  const yaml = source.registriesD === undefined ? [] : list(source.registriesD, (n) => n.endsWith('.yaml'))
  files.push(...yaml)
  const registriesD = parseRegistriesD(yaml.map((file) => ({ file, text: readText(file, 'RegistriesDInvalid') })))
  return { main, byNamespace, registriesD, files }
}
