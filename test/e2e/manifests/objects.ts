/**
 * Small pure readers over decoded manifests: pick an object, pullguard's container and webhook,
 * evaluate a label selector as the API server does, flatten RBAC rules. Typed with
 * @kubernetes/client-node's models (the "every field is known" test shows the objects fit them).
 */
import type {
  V1Container,
  V1Deployment,
  V1LabelSelector,
  V1PolicyRule,
  V1ValidatingWebhook,
  V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node'
import type { KubeObject } from './render.js'

/** The one object of this kind and name; throws when there is none or more than one. */
export function the<T>(objects: readonly KubeObject[], kind: string, name: string): T & KubeObject {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name)
  if (found.length !== 1) throw new Error(`expected exactly one ${kind} ${name}, found ${found.length}`)
  return found[0] as T & KubeObject
}

export function ofKind<T>(objects: readonly KubeObject[], kind: string): Array<T & KubeObject> {
  return objects.filter((o) => o.kind === kind) as Array<T & KubeObject>
}

/**
 * Label selector semantics (apimachinery labels.Selector): every matchLabels pair and every
 * expression must hold; NotIn and DoesNotExist hold for a missing key.
 */
export function selects(selector: V1LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key)
    const value = labels[key]
    switch (operator) {
      case 'In':
        if (!has || !values.includes(value as string)) return false
        break
      case 'NotIn':
        if (has && values.includes(value as string)) return false
        break
      case 'Exists':
        if (!has) return false
        break
      case 'DoesNotExist':
        if (has) return false
        break
      default:
        throw new Error(`unknown label selector operator ${operator}`)
    }
  }
  return true
}

/** RBAC rules as sorted `group/resource:verb` grants (core group is empty), or a description of what cannot be flattened. */
export function grants(rules: readonly V1PolicyRule[]): string[] {
  const out: string[] = []
  for (const rule of rules) {
    if (rule.nonResourceURLs !== undefined) out.push(`nonResourceURLs:${rule.nonResourceURLs.join(',')}`)
    if (rule.resourceNames !== undefined) out.push(`resourceNames:${rule.resourceNames.join(',')}`)
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        for (const verb of rule.verbs) out.push(`${group}/${resource}:${verb}`)
      }
    }
  }
  return out.sort()
}

export function pullguardDeployment(objects: readonly KubeObject[]): V1Deployment {
  return the<V1Deployment>(objects, 'Deployment', 'pullguard')
}

export function pullguardContainer(objects: readonly KubeObject[]): V1Container {
  const containers = pullguardDeployment(objects).spec?.template.spec?.containers ?? []
  if (containers.length !== 1)
    throw new Error(`expected one container in Deployment pullguard, found ${containers.length}`)
  return containers[0] as V1Container
}

export function pullguardWebhook(objects: readonly KubeObject[]): V1ValidatingWebhook {
  const webhooks =
    the<V1ValidatingWebhookConfiguration>(objects, 'ValidatingWebhookConfiguration', 'pullguard').webhooks ?? []
  if (webhooks.length !== 1)
    throw new Error(`expected one webhook in ValidatingWebhookConfiguration pullguard, found ${webhooks.length}`)
  return webhooks[0] as V1ValidatingWebhook
}

/** The value of `--name=value` in a container's args. */
export function flag(args: readonly string[], name: string): string | undefined {
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(`--${name}=`.length)
}

/** The arguments, less those naming files that exist only in the pod (TLS, mounted CA, docker config, pools file) or on the node (credential providers). */
export function argsWithoutPodFiles(objects: readonly KubeObject[]): string[] {
  return (pullguardContainer(objects).args ?? []).filter(
    (a) =>
      !/^--(tls-cert|tls-key|registry-ca|node-docker-config|image-credential-provider-config|image-credential-provider-bin-dir|containerd-hosts-dir|registries-conf|crio-config|crio-config-dir|node-pools)=/.test(
        a,
      ),
  )
}
