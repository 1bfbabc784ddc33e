// Counts the HTTP requests undici really sends, per origin, through undici's own diagnostics
// channel: no mocking of the client under test.
import diagnostics from 'node:diagnostics_channel'

interface RequestMessage {
  request: { origin?: unknown; method?: unknown; path?: unknown }
}

export interface RequestCounter {
  /** Requests to `origin` (`https://127.0.0.1:PORT`) since start or the last reset. */
  count(origin: string): number
  paths(origin: string): string[]
  reset(): void
  stop(): void
}

export function countRequests(): RequestCounter {
  const seen: Array<{ origin: string; line: string }> = []
  const listener = (message: unknown): void => {
    const r = (message as RequestMessage).request
    seen.push({ origin: String(r.origin), line: `${String(r.method)} ${String(r.path)}` })
  }
  const channel = diagnostics.channel('undici:request:create')
  channel.subscribe(listener)
  return {
    count: (origin) => seen.filter((s) => s.origin === origin).length,
    paths: (origin) => seen.filter((s) => s.origin === origin).map((s) => s.line),
    reset: () => void seen.splice(0),
    stop: () => channel.unsubscribe(listener),
  }
}
