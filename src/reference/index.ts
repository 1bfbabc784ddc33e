export { parseReference, tryParseReference, MAX_INPUT_LENGTH, MAX_PATH_LENGTH } from './reference.js';
export type { ImageReference } from './reference.js';
export { InvalidReferenceError } from './errors.js';
export type { InvalidReferenceReason } from './errors.js';
export { digestProblem } from './grammar.js';
