// Tiny Node servers that misbehave on purpose (hang, reset, trickle, talk garbage, rate limit,
// redirect): the faults the real registry cannot be made to produce. Always on 127.0.0.1.
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
  type Server as HttpServer,
} from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import type { TestCA } from './pki.js'

/** `connection`: the client's port, which tells connections apart. */
export interface SeenRequest {
  method: string
  url: string
  headers: IncomingMessage['headers']
  connection: number | undefined
}
export interface FakeServer {
  host: string // 127.0.0.1:PORT
  origin: string
  seen: SeenRequest[]
  close(): Promise<void>
}

export type Handler = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest[]) => void

/** An HTTP server (HTTPS when `ca` is given, with a cert for 127.0.0.1). */
export async function startFakeServer(handler: Handler, ca?: TestCA): Promise<FakeServer> {
  const seen: SeenRequest[] = []
  const wrapped = (req: IncomingMessage, res: ServerResponse): void => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, connection: req.socket.remotePort })
    handler(req, res, seen)
  }
  let server: HttpServer
  if (ca !== undefined) {
    const cert = await ca.issue('fake registry', { dns: ['localhost'], ips: ['127.0.0.1'] })
    server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, wrapped)
  } else {
    server = createHttpServer(wrapped)
  }
  return listen(server, ca === undefined ? 'http' : 'https', seen)
}

/** A raw TCP server: `onConnection` does whatever it likes with the socket. */
export async function startRawServer(onConnection: (socket: Socket) => void): Promise<FakeServer> {
  return listen(createNetServer(onConnection), 'https', [])
}

async function listen(server: HttpServer | NetServer, scheme: string, seen: SeenRequest[]): Promise<FakeServer> {
  const sockets = new Set<Socket>()
  const result = { host: '', origin: '', seen, close: async () => {} }
  // Tracked so close() can end kept-alive and hanging connections at once.
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  result.host = `127.0.0.1:${port}`
  result.origin = `${scheme}://127.0.0.1:${port}`
  result.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
  return result
}

/** A port free a moment ago on 127.0.0.1 (bound to 0, then closed), for a server that must be told its port. */
export function freePort(): Promise<number> {
  return closedPort()
}

/** A port with nothing listening on it (bound, then closed). */
export async function closedPort(): Promise<number> {
  const s = createNetServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}
