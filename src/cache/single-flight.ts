/**
 * Moved to async/single-flight.ts (it coordinates waiting on shared work; it is not a cache).
 * Re-exported only until providers/ imports it from there; then this file goes.
 */
export { SingleFlight } from '../async/single-flight.js'
