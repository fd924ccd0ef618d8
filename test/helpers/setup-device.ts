// Each jest project (one per backend) sets the default device of its test files.
process.env.FOURIERFORMER_DEVICE = (globalThis as { __FF_DEVICE__?: string }).__FF_DEVICE__ ?? 'cpu';
