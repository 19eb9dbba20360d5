import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    environment: 'happy-dom',
    environmentOptions: { happyDOM: { url: 'https://app.example/' } },
    include: ['test/**/*.test.js'],
    restoreMocks: true,
    unstubGlobals: true,
    testTimeout: 5000,
  },
});
