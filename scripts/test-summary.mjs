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
const failures = [];

function failuresOf(dir, report) {
  const out = [];
  const firstLines = (text) => String(text).split('\n').slice(0, 6).join('\n    ');
  for (const file of report.testResults ?? []) {
    const where = path.join(dir, path.relative(path.join(repo, dir), file.name));
    const failed = (file.assertionResults ?? []).filter((a) => a.status === 'failed');
    for (const a of failed)
      out.push(`FAILED ${where} › ${a.fullName}\n    ${firstLines(a.failureMessages?.[0] ?? '')}`);
    if (failed.length === 0 && file.status === 'failed')
      out.push(`FAILED ${where}\n    ${firstLines(file.message ?? '')}`);
  }
  return out;
}
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
  failures.push(...failuresOf(dir, r));
}
// The failures last, so that a log's tail (all some CI views keep) names them and their first lines.
for (const f of failures) console.log(f);
console.log(perPackage.join(' · '));
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
