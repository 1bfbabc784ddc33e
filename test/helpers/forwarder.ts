// A real registry behind an HTTPS front that can do what the registry itself cannot be made to do:
// serve it under another path (a corporate proxy with its own API root, for override_path), answer
// 429 for a while (distribution never rate limits), or take its time (to see a concurrency cap).
// Everything else is forwarded as is, and the front counts what it saw.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Agent, request } from 'undici'
import { startFakeServer, type FakeServer } from './fake-server.js'
import type { TestCA } from './pki.js'
import type { RunningRegistry } from './registry.js'

export interface Forwarder extends FakeServer {
  /** Most requests in flight at once since start (or the last reset). */
  maxConcurrent(): number
  reset(): void
  /** Until this returns undefined, requests get its answer instead of the registry's. */
  intercept:
    | ((req: IncomingMessage) => { status: number; headers?: Record<string, string>; body?: string } | undefined)
    | undefined
  delayMs: number
}

/** `pathMap`: the registry path for a request path (undefined: 404, as a proxy with nothing there). */
export async function startForwarder(
  ca: TestCA,
  target: RunningRegistry,
  pathMap: (path: string) => string | undefined = (p) => p,
): Promise<Forwarder> {
  const agent = new Agent({ connect: { ca: target.caPem } })
  let active = 0
  let max = 0
  // Read at each request, so a test can change them on the returned object.
  let f: Forwarder | undefined
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    active++
    max = Math.max(max, active)
    try {
      if ((f?.delayMs ?? 0) > 0) await new Promise((r) => setTimeout(r, f!.delayMs))
      const intercepted = f?.intercept?.(req)
      if (intercepted !== undefined) {
        res.writeHead(intercepted.status, intercepted.headers ?? {})
        res.end(intercepted.body ?? '')
        return
      }
      const url = new URL(req.url ?? '/', 'https://x')
      const path = pathMap(url.pathname)
      if (path === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' })
        res.end('not here')
        return
      }
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(req.headers))
        if (typeof v === 'string' && k !== 'host' && k !== 'connection') headers[k] = v
      const up = await request(`${target.origin}${path}${url.search}`, {
        method: req.method as 'GET' | 'HEAD',
        headers,
        dispatcher: agent,
      })
      const body = Buffer.from(await up.body.arrayBuffer())
      const out: Record<string, string | string[]> = {}
      for (const [k, v] of Object.entries(up.headers))
        if (v !== undefined && k !== 'connection' && k !== 'transfer-encoding' && k !== 'keep-alive') out[k] = v
      res.writeHead(up.statusCode, out)
      res.end(req.method === 'HEAD' ? undefined : body)
    } catch (err) {
      res.writeHead(502)
      res.end(String(err))
    } finally {
      active--
    }
  }
  const server = await startFakeServer((req, res) => void handle(req, res), ca)
  const closeServer = server.close.bind(server)
  f = Object.assign(server, {
    intercept: undefined,
    delayMs: 0,
    maxConcurrent: () => max,
    reset: () => {
      max = 0
      server.seen.splice(0)
    },
    close: async () => {
      await closeServer()
      await agent.close()
    },
  }) as Forwarder
  return f
}
