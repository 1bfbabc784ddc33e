// What the registry-client integration tests share: a request counter (reset before each test,
// with the token server's log), a fresh RegistryClient per call trusting the test CA, and
// references on a given registry host.
import type { Test } from 'tap'
import { parseReference, type ImageReference } from '../../src/reference/index.js'
import { RegistryClient } from '../../src/registry/index.js'
import type { TestCA } from './pki.js'
import { countRequests, type RequestCounter } from './request-counter.js'

export interface ClientHarness {
  counter: RequestCounter
  newClient(): RegistryClient
  ref(host: string, rest: string): ImageReference
}

export function clientHarness(t: Test, ca: TestCA, tokenServer: { requests: unknown[] }): ClientHarness {
  const counter = countRequests()
  t.teardown(() => counter.stop())
  t.beforeEach(() => {
    counter.reset()
    tokenServer.requests.splice(0)
  })
  return {
    counter,
    newClient: () => {
      const c = new RegistryClient({ trust: { extraCaPem: ca.caPem } })
      t.teardown(() => c.close())
      return c
    },
    ref: (host, rest) => parseReference(`${host}/${rest}`),
  }
}
