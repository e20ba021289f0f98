// 3. Bad context input. For EVERY ONEAPP_* variable of the schema: wrong type, out of range and
// injection values are refused by parseContext naming the variable; the same contexts through the
// lifecycle's configure (parse → refuse) leave every rendered gateway and engine file byte-identical.
// Then a property test: whatever string parseContext ACCEPTS renders nginx/unit/env text without an
// extra directive, and nginx -t accepts it.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { appliancePaths, ContextError, parseContext, variables, type Config } from '@slm-copilot/context-schema';
import { configure } from '@slm-copilot/lifecycle';
import { loadChatTemplate, renderEngine, type ModelFacts } from '@slm-copilot/localai-install';
import { ensureSelfSigned, renderGateway } from '@slm-copilot/nginx-config';
import { mainConf, NGINX, removeTempRoots, tempRoot } from '@slm-copilot/nginx-config/test-support/nginx';
import { applyFileSet, sha256File, type FileSet } from '@slm-copilot/task-kit';
import { ensureLlamaBuild, ensureTinyModel, seededRandom } from '@slm-copilot/testbed';
import { $ } from 'zx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BAD_VALUES, type BadKind } from './test-support/bad-values.js';
import { appliance, testHost as host } from './test-support/appliance.js';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';

const GOOD = {
  ONEAPP_COPILOT_PASSWORD: 'sk-hardening-good-0123456789',
  ONEAPP_COPILOT_EXTRA_API_KEYS: 'sk-extra-one-0123456789,sk-extra-two-0123456789',
  ONEAPP_COPILOT_HTTPS_PORT: '8443',
  ONEAPP_COPILOT_CONTEXT_SIZE: '4096',
  ONEAPP_COPILOT_CORS_ORIGINS: 'https://ide.example.com',
  ONEAPP_COPILOT_BASIC_AUTH: 'YES',
};

// What the operator reads may change on a refusal (that is where the refusal is reported); nothing else.
const REPORTING = [
  'etc/one-appliance/config',
  'etc/slm-copilot/clients/cline-settings.json',
  'etc/slm-copilot/clients/continue-config.yaml',
  'etc/slm-copilot/motd',
  'etc/update-motd.d/60-slm-copilot',
];

async function snapshot(dir: string, out = new Map<string, string>()): Promise<Map<string, string>> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await snapshot(p, out);
    else if (e.isFile()) out.set(p, await sha256File(p));
  }
  return out;
}

let model: { path: string; sha256: string };

beforeAll(async () => {
  const llama = await ensureLlamaBuild({ variant: 'dispatch' });
  const m = await ensureTinyModel({ llama });
  model = { path: m.path, sha256: m.sha256 };
}, 40 * 60_000);

afterAll(() => removeTempRoots());

describe('bad context input', () => {
  it('every schema variable has bad values of each kind (type, range, injection)', () => {
    const missing: string[] = [];
    for (const v of variables) {
      const list = BAD_VALUES[v.name] ?? [];
      const kinds = new Set<BadKind>(list.map((c) => c.kind));
      if (list.length < 3 || !kinds.has('type') || !kinds.has('range') || !kinds.has('injection'))
        missing.push(`${v.name} (${list.length} cases, kinds: ${[...kinds].join(',') || 'none'})`);
    }
    expect(missing, 'add cases to src/test-support/bad-values.ts').toEqual([]);
    // …and no cases for variables the schema no longer has.
    expect(Object.keys(BAD_VALUES).filter((n) => !variables.some((v) => v.name === n))).toEqual([]);
  });

  it('parseContext refuses every bad value, naming exactly that variable (secrets never echoed)', () => {
    const wrong: string[] = [];
    let n = 0;
    for (const v of variables) {
      for (const c of BAD_VALUES[v.name] ?? []) {
        n++;
        try {
          parseContext({ ...GOOD, [v.name]: c.value });
          wrong.push(`${v.name} = ${JSON.stringify(c.value.slice(0, 60))} (${c.kind}) was ACCEPTED`);
        } catch (e) {
          if (!(e instanceof ContextError)) {
            wrong.push(`${v.name} (${c.kind}): ${String(e)}`);
            continue;
          }
          const named = e.problems.map((p) => p.variable);
          if (named.join() !== v.name)
            wrong.push(
              `${v.name} = ${JSON.stringify(c.value.slice(0, 60))} (${c.kind}): problems name ${named.join(', ')}`,
            );
          if (!e.message.includes(v.name)) wrong.push(`${v.name}: the message does not name it`);
          if (v.secret && c.value.length >= 12 && e.message.includes(c.value))
            wrong.push(`${v.name}: the secret value is echoed`);
        }
      }
    }
    console.log(`bad context: ${n} bad values over ${variables.length} variables, each refused by parseContext`);
    expect(wrong).toEqual([]);
  });

  for (const engine of ['llama-server', 'localai'] as const) {
    it(`through the lifecycle's configure (${engine}): each bad context refused, no render changes`, async () => {
      const a = await appliance(`ctx-${engine}`, model);
      const good = { ...GOOD, ONEAPP_COPILOT_ENGINE: engine };
      await configure(a.options(good));
      const paths = appliancePaths(a.root);
      const rendered = [
        paths.nginx.siteFile,
        path.join(paths.nginx.snippetsDir, 'api-keys.conf'),
        path.join(paths.systemdDir, 'slm-copilot-engine.service'),
        paths.engine.chatTemplate,
      ];
      if (engine === 'localai')
        rendered.push(path.join(paths.configDir, 'engine.env'), path.join(paths.modelsDir, 'devstral-small-2.yaml'));
      const before = await snapshot(a.root);
      for (const f of rendered) expect(before.has(f), f).toBe(true);
      const wrong: string[] = [];
      let n = 0;
      for (const v of variables) {
        for (const c of BAD_VALUES[v.name] ?? []) {
          n++;
          const env = { ...good, [v.name]: c.value };
          const error = await configure(a.options(env)).then(
            () => null,
            (e: unknown) => e,
          );
          if (!(error instanceof ContextError))
            wrong.push(
              `${v.name} (${c.kind}) ${JSON.stringify(c.value.slice(0, 40))}: ` +
                (error === null ? 'configure succeeded' : String(error)),
            );
          else if (!error.problems.some((p) => p.variable === v.name)) wrong.push(`${v.name}: refused, but not named`);
          const after = await snapshot(a.root);
          const changed = [...new Set([...before.keys(), ...after.keys()])]
            .filter((p) => before.get(p) !== after.get(p))
            .map((p) => path.relative(a.root, p));
          const unexpected = changed.filter((p) => !REPORTING.includes(p));
          if (unexpected.length) wrong.push(`${v.name} (${c.kind}) changed ${unexpected.join(', ')}`);
        }
      }
      // The refusal is reported where the operator looks.
      expect(await readFile(paths.reportFile, 'utf8')).toMatch(/ONEAPP_COPILOT_BASIC_AUTH/);
      console.log(
        `configure (${engine}): ${n} bad contexts refused, ` +
          `${before.size} files byte-identical except the report/banner`,
      );
      expect(wrong).toEqual([]);
      // Control (the comparison can fail): a GOOD change does rewrite rendered files.
      await configure(a.options({ ...good, ONEAPP_COPILOT_CONTEXT_SIZE: '8192', ONEAPP_COPILOT_RATE_LIMIT: '7' }));
      const changedByGood = [...(await snapshot(a.root))].filter(([p, h]) => before.get(p) !== h).map(([p]) => p);
      expect(changedByGood).toContain(paths.nginx.siteFile);
      expect(changedByGood).toContain(
        engine === 'llama-server'
          ? path.join(paths.systemdDir, 'slm-copilot-engine.service')
          : path.join(paths.configDir, 'engine.env'),
      );
    }, 240_000);
  }
});

// ---------------------------------------------------------------------------------------------
// Property: what parseContext accepts renders safely.

/** Every character class an injection could use: all printable ASCII, controls, and some Unicode. */
const SPECIALS = [
  ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).filter((c) => !/[A-Za-z0-9]/.test(c)),
  '\t',
  '\n',
  '\r',
  '\v',
  '\f',
  '\0',
  '\x1b',
  '\x7f',
  'é',
  '\u00a0',
  '\u2028',
  '\u202e',
  '😀',
  'ı',
  'K',
];

/** A valid example per string variable, and the neutral value of the same shape used as the baseline. */
const EXAMPLES: Record<string, { example: string; neutral: (accepted: Config) => Record<string, string> }> = {
  ONEAPP_COPILOT_PASSWORD: {
    example: 'sk-Abc.def~ghi+jkl/mno=pqr-0123',
    neutral: () => ({ ONEAPP_COPILOT_PASSWORD: 'sk-neutral-main-key-0123' }),
  },
  ONEAPP_COPILOT_EXTRA_API_KEYS: {
    example: 'sk-extra.one~0123456789,sk-extra+two/0123456789=',
    neutral: (c) => ({
      ONEAPP_COPILOT_EXTRA_API_KEYS: c.extraApiKeys.map((_, i) => `sk-neutral-extra-${i}-0123456789`).join(','),
    }),
  },
  ONEAPP_COPILOT_MODEL_ID: {
    example: 'devstral-small-2.Q4_K_M',
    neutral: () => ({ ONEAPP_COPILOT_MODEL_ID: 'neutral-model' }),
  },
  ONEAPP_COPILOT_HOSTNAME: {
    example: 'copilot.example.com',
    neutral: () => ({ ONEAPP_COPILOT_HOSTNAME: 'neutral.example.com' }),
  },
  ONEAPP_COPILOT_LETSENCRYPT_EMAIL: {
    example: 'ops+copilot@example.com',
    neutral: () => ({ ONEAPP_COPILOT_LETSENCRYPT_EMAIL: 'neutral@example.com' }),
  },
  ONEAPP_COPILOT_ACME_DIRECTORY: {
    example: 'https://acme.example.com:14000/dir',
    neutral: () => ({ ONEAPP_COPILOT_ACME_DIRECTORY: 'https://neutral.example.com/dir' }),
  },
  ONEAPP_COPILOT_CORS_ORIGINS: {
    example: 'https://ide.example.com:8443,http://localhost:3000',
    neutral: (c) => ({
      ONEAPP_COPILOT_CORS_ORIGINS: c.corsOrigins
        .map((o, i) => (o === '*' ? '*' : `https://neutral${i}.example.com`))
        .join(','),
    }),
  },
  ONEAPP_COPILOT_TLS_CERT: {
    example: Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64'),
    neutral: () => ({}),
  },
  ONEAPP_COPILOT_TLS_KEY: {
    example: Buffer.from('-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n').toString('base64'),
    neutral: () => ({}),
  },
};

const facts: ModelFacts = {
  fileName: 'tiny.gguf',
  bytes: 2_000_000,
  architecture: 'mistral3',
  contextLength: 32768,
  blockCount: 2,
  headCountKv: 1,
  keyLength: 64,
  valueLength: 64,
};

interface Rendered {
  nginx: FileSet;
  engine: FileSet;
}

function renderAll(
  config: Config,
  root: string,
  tls: { certificate: string; key: string },
  template: string,
): Rendered {
  const paths = appliancePaths(root);
  const nginx = renderGateway(config, {
    paths,
    keys: { main: config.apiKey!, extra: config.extraApiKeys },
    tls,
    httpPort: 9080,
    listenAddresses: ['127.0.0.1'],
    keyFileOwner: null,
  });
  const engine = [
    ...renderEngine({
      config: { ...config, engine: 'llama-server' },
      model: facts,
      host,
      paths,
      chatTemplate: template,
    }).files,
    ...renderEngine({
      config: { ...config, engine: 'localai' },
      model: facts,
      host,
      paths,
      chatTemplate: template,
    }).files.filter((f) => !f.path.endsWith('.jinja')),
  ];
  return { nginx, engine };
}

const count = (text: string, ch: string) => text.split(ch).length - 1;

/**
 * The structure of a render: per nginx file the number of `;`, `{`, `}`; per unit/env/yaml file its line
 * count and keys.
 */
function structure(r: Rendered): Record<string, string> {
  const out: Record<string, string> = {};
  // Keyed by position (the LocalAI model YAML's file name is the model id).
  r.nginx.forEach((f, i) => {
    if (!f.path.endsWith('.json'))
      out[`nginx${i}:${path.basename(f.path)}`] =
        `;${count(f.text, ';')} {${count(f.text, '{')} }${count(f.text, '}')} lines${f.text.split('\n').length}`;
  });
  for (const [i, f] of r.engine.entries()) {
    if (f.path.endsWith('.jinja')) continue;
    const keys = f.text
      .split('\n')
      .map(
        (l) =>
          /^([A-Za-z_][\w.-]*)\s*[=:]/.exec(l)?.[1] ??
          (l.trim() === ''
            ? ''
            : l.startsWith('#')
              ? '#'
              : l.startsWith('[')
                ? l
                : l.startsWith('  ') || l.startsWith('- ')
                  ? '·'
                  : '?'),
      );
    out[`engine${i}${path.extname(f.path)}`] = keys.join('|');
  }
  return out;
}

describe('property: any string parseContext accepts renders without extra directives', () => {
  const seed = Number(process.env.SLM_COPILOT_HARDENING_SEED ?? 20261128);
  const perVariable = Number(process.env.SLM_COPILOT_HARDENING_CASES ?? 300);
  let root: string;
  let tls: { certificate: string; key: string };
  let template: string;
  let conf: string;

  beforeAll(async () => {
    root = await tempRoot('hardening-prop');
    const paths = appliancePaths(root);
    tls = (await ensureSelfSigned({ paths, hostname: null, ipAddresses: [], log: quietLog })).served;
    template = await loadChatTemplate();
    conf = path.join(root, 'etc/nginx/nginx.conf');
    await mkdir(path.join(root, 'etc/nginx/conf.d'), { recursive: true });
    await writeFile(conf, mainConf(root, paths));
    for (const d of ['run/nginx/body', 'var/log/nginx', 'var/lib/slm-copilot-acme'])
      await mkdir(path.join(root, d), { recursive: true });
  });

  const nginxT = async (files: FileSet): Promise<string | null> => {
    await applyFileSet('/', files);
    const r = await $({ nothrow: true, quiet: true })`${NGINX} -t -q -c ${conf}`;
    return r.exitCode === 0 ? null : (r.stderr + r.stdout).trim();
  };

  it(`random strings, every special character (seed ${seed}): accepted keep structure, pass nginx -t`, async () => {
    const rand = seededRandom(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const base = { ONEAPP_COPILOT_PASSWORD: 'sk-neutral-main-key-0123' };
    const problems: string[] = [];
    const stats: string[] = [];
    const forNginxT: Array<{ name: string; value: string; files: FileSet; score: number }> = [];
    for (const [name, { example, neutral }] of Object.entries(EXAMPLES)) {
      expect(variables.some((v) => v.name === name)).toBe(true);
      const candidates: string[] = [example];
      // every special character at least once, at a random place …
      for (const c of SPECIALS) {
        const i = Math.floor(rand() * (example.length + 1));
        candidates.push(example.slice(0, i) + c + example.slice(i), c + example, example + c);
      }
      // … then random edits: inserts, replacements, deletions, from the whole alphabet
      while (candidates.length < perVariable + SPECIALS.length * 3) {
        let s = example;
        for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) {
          const i = Math.floor(rand() * (s.length + 1));
          const c = rand() < 0.6 ? pick(SPECIALS) : String.fromCharCode(32 + Math.floor(rand() * 95));
          const op = rand();
          s =
            op < 0.5
              ? s.slice(0, i) + c + s.slice(i)
              : op < 0.8
                ? s.slice(0, i) + c + s.slice(i + 1)
                : s.slice(0, i) + s.slice(i + 1);
        }
        candidates.push(s);
      }
      let accepted = 0;
      for (const value of candidates) {
        let config: Config;
        try {
          config = parseContext({ ...base, [name]: value });
        } catch (e) {
          if (!(e instanceof ContextError)) problems.push(`${name} ${JSON.stringify(value)}: ${String(e)}`);
          continue;
        }
        accepted++;
        let r: Rendered;
        try {
          r = renderAll(config, root, tls, template);
        } catch (e) {
          // The renderer's own guard refusing is safe, but the schema should not have accepted it.
          problems.push(
            `${name} ${JSON.stringify(value)}: accepted by parseContext but the renderer refused: ` +
              (e as Error).message,
          );
          continue;
        }
        const baseline = renderAll(parseContext({ ...base, ...neutral(config) }), root, tls, template);
        const got = structure(r);
        const want = structure(baseline);
        for (const k of Object.keys(want))
          if (got[k] !== want[k])
            problems.push(`${name} ${JSON.stringify(value)}: ${k} changed structure: ${got[k]} vs ${want[k]}`);
        const score = [...value].filter((c) => !/[A-Za-z0-9]/.test(c)).length;
        forNginxT.push({ name, value, files: r.nginx, score });
      }
      stats.push(`${name.replace('ONEAPP_COPILOT_', '')} ${accepted}/${candidates.length}`);
    }
    // nginx -t on the accepted values with the most special characters, a few per variable (nginx -t costs ~0.2 s).
    const byName = new Map<string, typeof forNginxT>();
    for (const x of forNginxT) byName.set(x.name, [...(byName.get(x.name) ?? []), x]);
    const sample = [...byName.values()].flatMap((xs) => xs.sort((a, b) => b.score - a.score).slice(0, 4));
    for (const s of sample) {
      const why = await nginxT(s.files);
      if (why) problems.push(`${s.name} ${JSON.stringify(s.value)}: nginx -t refused: ${why}`);
    }
    console.log(
      `property: accepted/tried per variable: ${stats.join(', ')}; nginx -t on ${sample.length} accepted values`,
    );
    expect(problems.slice(0, 20)).toEqual([]);
    expect(forNginxT.length).toBeGreaterThan(50);
  }, 240_000);

  it('mutation: an unguarded substitution of an injected value is caught by the same checks', async () => {
    const config = parseContext({
      ONEAPP_COPILOT_PASSWORD: 'sk-neutral-main-key-0123',
      ONEAPP_COPILOT_MODEL_ID: 'neutral-model',
    });
    const good = renderAll(config, root, tls, template);
    // What a renderer without the guard would produce for
    // MODEL_ID = `x; } server { listen 9; location / { return 200 "pwned"; } #`
    const injected = 'x; } server { listen 9; location / { return 200 "pwned"; } #';
    const broken: Rendered = {
      nginx: good.nginx.map((f) => ({ ...f, text: f.text.split('neutral-model').join(injected) })),
      engine: good.engine.map((f) => ({ ...f, text: f.text.split('neutral-model').join(injected) })),
    };
    const diff = Object.entries(structure(broken)).filter(([k, v]) => structure(good)[k] !== v);
    expect(diff.length).toBeGreaterThan(0);
    expect(await nginxT(broken.nginx)).not.toBeNull();
    expect(await nginxT(good.nginx)).toBeNull();
  }, 60_000);
});
