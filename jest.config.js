// The suite runs once per device, as one jest project each, so the output names the backend of
// every test file ("cpu", "cuda-emu"). FOURIERFORMER_TEST_DEVICES picks them (comma-separated);
// FOURIERFORMER_DEVICE alone (e.g. =cuda on a GPU machine, scripts/gpu-check) runs just that one.
const devices = (process.env.FOURIERFORMER_TEST_DEVICES || process.env.FOURIERFORMER_DEVICE || 'cpu,cuda-emu')
  .split(',')
  .map((d) => d.trim())
  .filter(Boolean);

module.exports = {
  projects: devices.map((device) => ({
    displayName: device,
    testEnvironment: 'node',
    roots: ['<rootDir>/test'],
    testMatch: ['**/*.test.ts'],
    transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true }] },
    globals: { __FF_DEVICE__: device },
    setupFiles: ['<rootDir>/test/helpers/setup-device.ts'],
  })),
  testTimeout: 120000,
};
