#!/usr/bin/env node
// `build` of every package: src/cli.ts -> dist/cli.mjs (self-contained), src/index.ts -> dist/index.mjs (library).
import { existsSync } from 'node:fs';
import { bundleCli, bundleLibrary } from './esbuild-options.mjs';

const started = performance.now();
if (existsSync('src/cli.ts')) await bundleCli('src/cli.ts', 'dist/cli.mjs');
if (existsSync('src/index.ts')) await bundleLibrary('src/index.ts', 'dist/index.mjs');
console.error(
  `esbuild: ${process.cwd().split('/').slice(-2).join('/')} bundled in ${Math.round(performance.now() - started)} ms`,
);
