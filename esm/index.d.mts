// Types of the ES module entry (esm/index.mjs): those of the CommonJS build.
import * as fourierformer from '../dist/index.js';
export * from '../dist/index.js';
export default fourierformer;
