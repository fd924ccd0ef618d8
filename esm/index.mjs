// The ES module entry: the CommonJS build (dist/index.js) re-exported, by name and as default.
export * from '../dist/index.js';
export { default } from '../dist/index.js';
