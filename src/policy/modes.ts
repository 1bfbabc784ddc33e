/** `--mode`: what a namespace without a `pullguard.io/mode` label gets. */
export type Mode = 'enforce' | 'warn'

/** `--on-registry-error`: what an image the registry gave no answer for gets. */
export type OnRegistryError = 'allow' | 'deny'
