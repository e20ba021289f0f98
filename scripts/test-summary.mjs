#!/usr/bin/env node
// Prints one total line over every package's vitest JSON report ("tests: N passed, N failed, N skipped").
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let passed = 0;
let failed = 0;
let skipped = 0;
const perPackage = [];
// The workspace's globs (pnpm-workspace.yaml): shipped packages, the rig, the build driver.
const under = (dir) => readdirSync(path.join(repo, dir)).map((d) => path.join(dir, d));
const dirs = [...under('packages'), ...under('packages/rig'), 'scripts'];
for (const dir of dirs) {
  const file = path.join(repo, dir, 'test-results/vitest.json');
  if (!existsSync(file)) continue;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  perPackage.push(`${path.basename(dir)}: ${r.numPassedTests}/${r.numTotalTests}`);
}
console.log(perPackage.join(' · '));
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
