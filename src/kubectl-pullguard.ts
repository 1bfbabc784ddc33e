#!/usr/bin/env node
/**
 * `kubectl pullguard …`: kubectl runs an executable named kubectl-pullguard found on PATH with
 * every word after `pullguard`, its own flags included (`--context`, `-n`, `--kubeconfig`), and
 * the user's KUBECONFIG. It is the same CLI; cli.ts names itself after the executable it runs as.
 */
import './cli.js'
