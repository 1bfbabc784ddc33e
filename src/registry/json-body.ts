/**
 * A registry or token-server body read as a JSON object, or undefined. Bodies come from servers we
 * do not control: anything that is not an object (garbage, an array, `null`) is simply "no answer",
 * never an exception and never echoed.
 */
export function jsonObject(body: Buffer): Record<string, unknown> | undefined {
  let json: unknown
  try {
    json = JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
  return typeof json === 'object' && json !== null && !Array.isArray(json)
    ? (json as Record<string, unknown>)
    : undefined
}
