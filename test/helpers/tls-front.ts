// A real registry behind a front that changes only how it is reached, byte for byte: in plain HTTP
// (a TCP front speaking TLS to the registry, so the registry itself answers whatever arrives, a TLS
// handshake included), or over TLS with the front's own certificate, optionally requiring a client
// certificate (mTLS). Always on 127.0.0.1; close() ends every connection.
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls'
import type { IssuedCert } from './pki.js'
import type { RunningRegistry } from './registry.js'

export interface Front {
  host: string
  /** Connections accepted. */
  connections(): number
  /** TLS handshakes that failed at the front (no client certificate, an untrusted one). */
  handshakeFailures(): number
  close(): Promise<void>
}

/** Pipes `socket` to `target` over TLS (trusting the registry's CA) and back. */
function pipeToRegistry(socket: Socket, target: RunningRegistry): void {
  const [hostname, port] = target.host.split(':') as [string, string]
  const up = tlsConnect({ host: hostname, port: Number(port), ca: target.caPem })
  socket.on('error', () => up.destroy())
  up.on('error', () => socket.destroy())
  socket.on('close', () => up.destroy())
  up.on('close', () => socket.destroy())
  socket.pipe(up).pipe(socket)
}

async function listen(server: Server, counts: { connections: number; failures: number }): Promise<Front> {
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    counts.connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    host: `127.0.0.1:${port}`,
    connections: () => counts.connections,
    handshakeFailures: () => counts.failures,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** The registry in plain HTTP: what arrives (a TLS ClientHello too) reaches the registry as HTTP. */
export async function startPlainFront(target: RunningRegistry): Promise<Front> {
  const counts = { connections: 0, failures: 0 }
  return listen(
    createNetServer((socket) => pipeToRegistry(socket, target)),
    counts,
  )
}

/** The registry over TLS with `cert`; with `clientCaPem`, only clients presenting a certificate it issued get through. */
export async function startTlsFront(opts: {
  cert: IssuedCert
  target: RunningRegistry
  clientCaPem?: string
}): Promise<Front> {
  const counts = { connections: 0, failures: 0 }
  const server = createTlsServer(
    {
      cert: opts.cert.certPem,
      key: opts.cert.keyPem,
      ...(opts.clientCaPem === undefined ? {} : { requestCert: true, rejectUnauthorized: true, ca: opts.clientCaPem }),
    },
    (socket) => pipeToRegistry(socket, opts.target),
  )
  server.on('tlsClientError', () => counts.failures++)
  // A TLS server counts raw TCP connections too: listen() hooks 'connection'.
  return listen(server, counts)
}
