// kube-proxy's part for the test control plane: kube-apiserver sends its cluster traffic (a webhook's
// Service reference resolves to the Service's cluster IP) through its egress selector to an HTTP
// CONNECT proxy on a unix socket, and this proxy connects each routed cluster IP:port to a process
// on 127.0.0.1. The API server still verifies the webhook's certificate against the Service's DNS
// name and the configured caBundle, exactly as in a cluster; only the packet routing is ours.
import { createServer, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'

export interface ServiceProxy {
  /** For kube-apiserver's --egress-selector-config-file. */
  configFile: string
  /** CONNECTs to `address` (cluster IP:port) go to 127.0.0.1:`port`; unrouted ones get 503. */
  route(address: string, port: number): void
  /** Every address the API server asked for, routed or not. */
  requested(): readonly string[]
  close(): Promise<void>
}

export async function startServiceProxy(dir: string): Promise<ServiceProxy> {
  const socketPath = join(dir, 'egress.sock')
  const routes = new Map<string, number>()
  const requested: string[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((_req, res) => {
    res.writeHead(405).end()
  })
  server.on('connect', (req, client: Socket) => {
    const address = req.url ?? ''
    requested.push(address)
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    client.on('error', () => client.destroy())
    const port = routes.get(address)
    if (port === undefined) {
      client.end(`HTTP/1.1 503 Service Unavailable\r\n\r\nno route to ${address}\n`)
      return
    }
    const upstream = connect(port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      upstream.pipe(client)
      client.pipe(upstream)
    })
    sockets.add(upstream)
    upstream.on('close', () => {
      sockets.delete(upstream)
      client.destroy()
    })
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, resolve)
  })
  const configFile = join(dir, 'egress-selector.json')
  await writeFile(
    configFile,
    JSON.stringify({
      apiVersion: 'apiserver.k8s.io/v1beta1',
      kind: 'EgressSelectorConfiguration',
      egressSelections: [
        { name: 'cluster', connection: { proxyProtocol: 'HTTPConnect', transport: { uds: { udsName: socketPath } } } },
        { name: 'controlplane', connection: { proxyProtocol: 'Direct' } },
        { name: 'etcd', connection: { proxyProtocol: 'Direct' } },
      ],
    }),
  )
  return {
    configFile,
    route: (address, port) => routes.set(address, port),
    requested: () => requested,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
