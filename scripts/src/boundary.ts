/**
 * The ship/rig boundary, judged from what is really bundled: every shipping entry point (the CLIs that go
 * into the image and each shipping package's library entry) is bundled by esbuild with a metafile, and no
 * input of those bundles may come from the test rig (packages/rig/*), the build driver (scripts/) or a
 * test harness (test-support/, *.test.ts). package.json is checked too, but it is not the judge: an import
 * that a manifest forgets still shows in the metafile.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { build, type Metafile } from 'esbuild';
import { $ } from 'zx';

export interface Violation {
  /** The shipping entry (or package.json) that pulls the file in. */
  entry: string;
  /** The offending input, relative to the repository root. */
  input: string;
  why: string;
}

export interface Workspace {
  shipping: { name: string; dir: string }[];
  rig: { name: string; dir: string }[];
}

const packageName = (dir: string) =>
  (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name: string }).name;

/** The workspace as pnpm-workspace.yaml lays it out: packages/* ship, packages/rig/* and scripts do not. */
export function readWorkspace(repoRoot: string): Workspace {
  const under = (rel: string) =>
    readdirSync(path.join(repoRoot, rel), { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(path.join(repoRoot, rel, d.name, 'package.json')))
      .map((d) => ({ dir: path.join(rel, d.name), name: packageName(path.join(repoRoot, rel, d.name)) }));
  return {
    shipping: under('packages'),
    rig: [...under('packages/rig'), { dir: 'scripts', name: '@slm-copilot/scripts' }],
  };
}

/** Why an input may not be in a shipped bundle, or null when it may. */
export function forbiddenInput(input: string): string | null {
  const p = input.split(path.sep).join('/');
  if (p.startsWith('packages/rig/')) return 'test rig code';
  if (p.startsWith('scripts/')) return 'build driver code (scripts/)';
  if (/(^|\/)test-support(\/|\.ts$)/.test(p)) return 'a test harness (test-support)';
  if (/\.test\.ts$/.test(p)) return 'a test file';
  return null;
}

/** The violations in one bundle's metafile. */
export function metafileViolations(entry: string, metafile: Metafile): Violation[] {
  const out: Violation[] = [];
  for (const input of Object.keys(metafile.inputs)) {
    const why = forbiddenInput(input);
    if (why) out.push({ entry, input, why });
  }
  return out;
}

/** A shipping package.json may not depend on a rig package at run time (devDependencies are for tests). */
export function manifestViolations(repoRoot: string, ws: Workspace): Violation[] {
  const rigNames = new Set(ws.rig.map((r) => r.name));
  const out: Violation[] = [];
  for (const pkg of ws.shipping) {
    const manifest = JSON.parse(readFileSync(path.join(repoRoot, pkg.dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    for (const dep of Object.keys(manifest.dependencies ?? {})) {
      if (rigNames.has(dep)) {
        out.push({ entry: `${pkg.dir}/package.json`, input: dep, why: 'a run-time dependency on the rig' });
      }
    }
  }
  return out;
}

/** Every .ts file below a directory, relative to the repository root. */
function tsFilesUnder(repoRoot: string, rel: string): string[] {
  if (!existsSync(path.join(repoRoot, rel))) return [];
  return readdirSync(path.join(repoRoot, rel), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(rel, f));
}

/**
 * What ships is a package's src/: a test harness kept there (a test-support folder, or a non-test module
 * that imports the rig) is one careless import away from the image, so it lives beside src/, not in it.
 */
export function harnessInSource(repoRoot: string, ws: Workspace): Violation[] {
  const rigImport = new RegExp(`from '(${ws.rig.map((r) => r.name).join('|')})[/']`);
  const out: Violation[] = [];
  for (const pkg of ws.shipping) {
    for (const file of tsFilesUnder(repoRoot, path.join(pkg.dir, 'src'))) {
      if (file.endsWith('.test.ts')) continue;
      const why = /(^|\/)test-support(\/|\.ts$)/.test(file)
        ? 'a test harness inside src/'
        : rigImport.test(readFileSync(path.join(repoRoot, file), 'utf8'))
          ? 'a module in src/ that imports the rig'
          : null;
      if (why) out.push({ entry: `${pkg.dir}/src`, input: file, why });
    }
  }
  return out;
}

/** Every shipping entry point: src/cli.ts and src/index.ts of each shipping package. */
export function shippingEntries(repoRoot: string, ws: Workspace): string[] {
  return ws.shipping
    .flatMap((p) => ['src/cli.ts', 'src/index.ts'].map((f) => path.join(p.dir, f)))
    .filter((f) => existsSync(path.join(repoRoot, f)));
}

/** Bundles one entry as the image's bundles are made (source condition, everything inlined) and reads its inputs. */
export async function bundleInputs(repoRoot: string, entry: string): Promise<Metafile> {
  const result = await build({
    absWorkingDir: repoRoot,
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['source'],
    write: false,
    outfile: 'boundary-check.mjs',
    metafile: true,
    logLevel: 'silent',
  });
  return result.metafile;
}

export async function checkBoundary(repoRoot: string, entries?: string[]): Promise<Violation[]> {
  const ws = readWorkspace(repoRoot);
  const out = [...manifestViolations(repoRoot, ws), ...harnessInSource(repoRoot, ws)];
  for (const entry of entries ?? shippingEntries(repoRoot, ws)) {
    out.push(...metafileViolations(entry, await bundleInputs(repoRoot, entry)));
  }
  return out;
}

/**
 * CI's cache key hashes named paths; a path that matches no tracked file (e.g. after a folder moved) makes
 * the key constant, and a stale cache would be restored forever. Returns the patterns that match nothing.
 */
export async function deadCacheKeyPatterns(repoRoot: string, workflow = '.github/workflows/ci.yml'): Promise<string[]> {
  const text = readFileSync(path.resolve(repoRoot, workflow), 'utf8');
  const patterns = [...text.matchAll(/hashFiles\(([^)]*)\)/g)].flatMap((m) =>
    [...m[1]!.matchAll(/'([^']+)'/g)].map((q) => q[1]!),
  );
  const dead: string[] = [];
  for (const p of patterns) {
    const r = await $({
      cwd: repoRoot,
      quiet: true,
    })`git ls-files --cached --others --exclude-standard -- ${`:(glob)${p}`}`;
    if (r.stdout.trim() === '') dead.push(p);
  }
  return dead;
}
