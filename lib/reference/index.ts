// The pure-TypeScript float64 reference: slow, plain, and the oracle of the tests.
export * from './fourier-metric';
export * from './attention';
export * from './compare';
export * from './optim';
export * from './nn-ops';
export * from './nn-modules';
export * from './tensor-ops';
export * from './attention-maps';
export * from './performer-attention';
export * from './flt';
export * from './neural-attention';
