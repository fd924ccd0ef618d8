// The pure-TypeScript float64 reference: slow, plain, and the oracle of the tests.
export * from './fourier-metric';
export * from './attention';
export * from './compare';
