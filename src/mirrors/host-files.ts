/**
 * The files a containerd host's TLS settings name (`ca`, `client`, or the docker-style *.crt and
 * *.cert/*.key), loaded as containerd loads them (core/remotes/docker/config/hosts.go,
 * updateTLSConfigFromHost):
 * - a CA file is read and appended to the pool (x509 AppendCertsFromPEM): it loads when at least
 *   one of its blocks is a certificate that parses; the others are skipped;
 * - a client pair is read (the key from the certificate's own file when no key file is given) and
 *   made a key pair (tls.X509KeyPair): every CERTIFICATE block, the first *PRIVATE KEY block, and
 *   a key that belongs to the certificate.
 * Any file that fails makes ConfigureHosts return the error, so the registry has no host at all
 * and every pull from it fails. Each file is read once per read of the configuration.
 */
import { X509Certificate } from 'node:crypto'
import { isAbsolute, relative } from 'node:path'
import { createSecureContext } from 'node:tls'
import type { ClientCertificate } from '../registry/endpoint.js'
import type { ClientPair } from './hosts-toml.js'

/** A file's content, or why it does not load and whether that holds for the nodes' copy too. */
export type Loaded<T> = { ok: true; value: T } | { ok: false; problem: string; certain: boolean }

const PEM = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g

/** The PEM blocks of `text`, with their type. */
function blocks(text: string): Array<{ type: string; pem: string }> {
  return [...text.matchAll(PEM)].map((m) => ({ type: m[1] ?? '', pem: m[0] }))
}

function parses(pem: string): boolean {
  try {
    new X509Certificate(pem)
    return true
  } catch {
    return false
  }
}

/** A CA file's certificates that load (PEM), or why none does (containerd: "unable to load CA cert"). */
export function caCertificates(path: string, text: string): Loaded<string> {
  const loaded = blocks(text)
    .filter((b) => b.type === 'CERTIFICATE' && parses(b.pem))
    .map((b) => b.pem)
  if (loaded.length === 0)
    return {
      ok: false,
      problem: `unable to load CA cert ${JSON.stringify(path)}: no PEM certificate in it parses`,
      certain: true,
    }
  return { ok: true, value: `${loaded.join('\n')}\n` }
}

/** A client certificate and key from their files' text (one text for both when the key is in the certificate's file). */
export function clientCertificate(pair: ClientPair, certText: string, keyText: string): Loaded<ClientCertificate> {
  const fail = (why: string): Loaded<ClientCertificate> => ({
    ok: false,
    certain: true,
    problem: `failed to load X509 key pair ${JSON.stringify(pair.certFile)}${pair.keyFile === undefined ? '' : ` and ${JSON.stringify(pair.keyFile)}`}: ${why}`,
  })
  const certs = blocks(certText).filter((b) => b.type === 'CERTIFICATE')
  if (certs.length === 0) return fail('no CERTIFICATE block')
  const key = blocks(keyText).find((b) => b.type === 'PRIVATE KEY' || b.type.endsWith(' PRIVATE KEY'))
  if (key === undefined) return fail('no PRIVATE KEY block')
  const value = { certPem: certs.map((b) => b.pem).join('\n'), keyPem: key.pem }
  try {
    // OpenSSL refuses a key that does not parse, is encrypted, or is not the certificate's.
    createSecureContext({ cert: value.certPem, key: value.keyPem })
  } catch (err) {
    const reason = (err as { reason?: unknown }).reason
    return fail(typeof reason === 'string' ? reason : 'the key does not load or does not belong to the certificate')
  }
  return { ok: true, value }
}

/**
 * Reads each file once; `read` throws with an errno code for a file that cannot be read. pullguard
 * sees the nodes' files only under the hosts directory it is given (`root`, mounted from the node):
 * a file there that is missing or does not load fails the registry, as on the node. A file
 * outside it is pullguard's own (its container's filesystem, not the node's), and one pullguard
 * may not read (EACCES: containerd runs as root) says nothing about the node: those are doubts,
 * said at the read, and the host is asked without the file. Never a denial on a guess.
 */
export class HostFiles {
  readonly #ca = new Map<string, Loaded<string>>()
  readonly #client = new Map<string, Loaded<ClientCertificate>>()
  readonly #read: (path: string) => string
  readonly #root: string
  /** Every file asked for, to be watched. */
  readonly paths = new Set<string>()
  /** Files that failed where pullguard cannot tell whether the nodes' fail too, with why. */
  readonly doubts = new Set<string>()

  constructor(read: (path: string) => string, root: string) {
    this.#read = read
    this.#root = root
  }

  ca(path: string): Loaded<string> {
    let loaded = this.#ca.get(path)
    if (loaded === undefined) {
      const text = this.#text(path, 'CA cert')
      loaded = text.ok ? this.#seen([path], caCertificates(path, text.value)) : text
      this.#ca.set(path, loaded)
    }
    return loaded
  }

  client(pair: ClientPair): Loaded<ClientCertificate> {
    const id = `${pair.certFile}\n${pair.keyFile ?? ''}`
    let loaded = this.#client.get(id)
    if (loaded === undefined) {
      const cert = this.#text(pair.certFile, 'CERT file')
      const key = pair.keyFile === undefined ? cert : this.#text(pair.keyFile, 'CERT file')
      const files = [pair.certFile, ...(pair.keyFile === undefined ? [] : [pair.keyFile])]
      loaded = !cert.ok ? cert : !key.ok ? key : this.#seen(files, clientCertificate(pair, cert.value, key.value))
      this.#client.set(id, loaded)
    }
    return loaded
  }

  /**
   * The first of `host`'s files that fails on the nodes too, in containerd's order (the CAs, then
   * the client pairs): the registry's pulls fail with it. Undefined: none that pullguard can tell.
   */
  problemOf(host: { caFiles: readonly string[]; clientPairs: readonly ClientPair[] }): string | undefined {
    const results = [...host.caFiles.map((f) => this.ca(f)), ...host.clientPairs.map((p) => this.client(p))]
    for (const r of results) if (!r.ok && r.certain) return r.problem
    return undefined
  }

  #inside(path: string): boolean {
    const rel = relative(this.#root, path)
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel)
  }

  /** A content failure is the nodes' too only for files under the hosts directory. */
  #seen<T>(files: readonly string[], loaded: Loaded<T>): Loaded<T> {
    if (loaded.ok || files.every((f) => this.#inside(f))) return loaded
    return this.#doubt(loaded.problem, `outside ${this.#root}, pullguard reads its own copy, not the nodes'`)
  }

  #doubt<T>(problem: string, why: string): Loaded<T> {
    this.doubts.add(
      `${problem} (${why}): the host is asked without it, so pullguard cannot tell whether the nodes' pulls fail on it`,
    )
    return { ok: false, problem, certain: false }
  }

  #text(path: string, what: string): Loaded<string> {
    this.paths.add(path)
    try {
      return { ok: true, value: this.#read(path) }
    } catch (err) {
      // A MirrorConfigError (too large) says its problem; a read error its errno code.
      const e = err as { code?: unknown; problem?: unknown; message?: unknown }
      const code = typeof e.code === 'string' ? e.code : undefined
      const why = typeof e.problem === 'string' ? e.problem : (code ?? String(e.message))
      const problem = `unable to read ${what} ${JSON.stringify(path)}: ${why}`
      if (!this.#inside(path))
        return this.#doubt(problem, `outside ${this.#root}, pullguard cannot see the nodes' file`)
      if (code === 'EACCES' || code === 'EPERM')
        return this.#doubt(problem, 'pullguard may not read it; containerd, as root, may')
      return { ok: false, problem, certain: true }
    }
  }
}
