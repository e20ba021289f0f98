import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { GUEST_DIR } from './base-image.js';
import { CONTEXT_HEADER, makeContextIso, quoteContextValue, renderContextSh } from './context-iso.js';

const tricky: Record<string, string> = {
  ONEAPP_PLAIN: 'llama-server',
  ONEAPP_QUOTE: "it's a 'test'",
  ONEAPP_SHELL: '$(touch /tmp/pwned) `id` $HOME \\n \\',
  ONEAPP_MULTILINE: 'line one\nline two\n',
  ONEAPP_EMPTY: '',
  ONEAPP_EQUALS: "a=b='c'",
};

const dirs: string[] = [];
const tempDir = async (prefix: string) => {
  const d = await mkdtemp(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** The guest's parser (guest/context-value.awk, used by slm-context-ssh in the base image), run on the host. */
async function awkValue(file: string, name: string): Promise<{ code: number; value: string }> {
  const r = await $({
    quiet: true,
    nothrow: true,
  })`awk -v want=${name} -f ${path.join(GUEST_DIR, 'context-value.awk')} ${file}`;
  return { code: r.exitCode ?? -1, value: r.stdout.replace(/\n$/, '') };
}

describe('context.sh rendering', () => {
  it("quotes like OpenNebula: single quotes, ' becomes '\\''", () => {
    expect(quoteContextValue('abc')).toBe("'abc'");
    expect(quoteContextValue("it's")).toBe("'it'\\''s'");
    expect(quoteContextValue('')).toBe("''");
  });

  it('writes the header, then KEY=value lines, SSH_PUBLIC_KEY last', () => {
    const text = renderContextSh({ A: '1', B: "x'y" }, { sshPublicKey: 'ssh-ed25519 AAAA test\n' });
    expect(text).toBe(`${CONTEXT_HEADER}\nA='1'\nB='x'\\''y'\nSSH_PUBLIC_KEY='ssh-ed25519 AAAA test'\n`);
  });

  it('refuses names a shell could not assign', () => {
    expect(() => renderContextSh({ 'BAD-NAME': 'x' })).toThrow(/invalid context variable name/);
    expect(() => renderContextSh({ '1X': 'x' })).toThrow(/invalid context variable name/);
  });

  it('bash reads back every value exactly (the format one-context sources)', async () => {
    const dir = await tempDir('slm-vm-ctx-');
    const file = path.join(dir, 'context.sh');
    await writeFile(file, renderContextSh(tricky));
    const names = Object.keys(tricky);
    const r = await $({
      quiet: true,
      cwd: dir,
    })`bash -c ${`. ./context.sh; for n in ${names.join(' ')}; do printf '%s\\0' "\${!n}"; done`}`;
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(Object.values(tricky));
  }, 120_000);

  it("the guest's awk parser reads every value exactly, without executing anything", async () => {
    const dir = await tempDir('slm-vm-ctx-');
    const file = path.join(dir, 'context.sh');
    const marker = path.join(dir, 'executed');
    await writeFile(
      file,
      renderContextSh(
        { ...tricky, ONEAPP_RUN: `$(touch ${marker})` },
        { sshPublicKey: 'ssh-ed25519 AAAAkey one\nssh-ed25519 AAAAkey two' },
      ),
    );
    for (const [k, v] of Object.entries(tricky)) expect(await awkValue(file, k), k).toEqual({ code: 0, value: v });
    expect(await awkValue(file, 'SSH_PUBLIC_KEY')).toEqual({
      code: 0,
      value: 'ssh-ed25519 AAAAkey one\nssh-ed25519 AAAAkey two',
    });
    expect((await awkValue(file, 'NOT_THERE')).code).toBe(1);
    await expect(readFile(marker)).rejects.toThrow();
  }, 120_000);
});

describe('makeContextIso', () => {
  it('writes an ISO labelled CONTEXT whose context.sh is byte-identical', async () => {
    const dir = await tempDir('slm-vm-ctx-iso-');
    const iso = await makeContextIso({
      values: tricky,
      sshPublicKey: 'ssh-ed25519 AAAA x',
      out: path.join(dir, 'ctx.iso'),
    });
    const toc = await $({ quiet: true })`xorriso -indev ${iso.path} -pvd_info`;
    expect(toc.stdout + toc.stderr).toMatch(/Volume Id\s*:\s*CONTEXT/i);
    const out = path.join(dir, 'extracted.sh');
    await $({ quiet: true })`xorriso -osirrox on -indev ${iso.path} -extract /context.sh ${out}`;
    expect(await readFile(out, 'utf8')).toBe(iso.contextSh);
    expect(iso.contextSh.startsWith(`${CONTEXT_HEADER}\n`)).toBe(true);
  }, 30_000);

  it("carries further files (OneGate's token.txt) byte-identical and 0600; refuses a path for a name", async () => {
    const dir = await tempDir('slm-vm-ctx-iso-');
    const iso = await makeContextIso({
      values: { VMID: '7' },
      files: { 'token.txt': 'tok-7\n' },
      out: path.join(dir, 'ctx.iso'),
    });
    const out = path.join(dir, 'token.txt');
    await $({ quiet: true })`xorriso -osirrox on -indev ${iso.path} -extract /token.txt ${out}`;
    expect(await readFile(out, 'utf8')).toBe('tok-7\n');
    const listing = await $({ quiet: true })`xorriso -indev ${iso.path} -lsl /token.txt`;
    expect(listing.stdout).toMatch(/^-rw------- /m);
    await expect(
      makeContextIso({ values: {}, files: { '../x': 'y' }, out: path.join(dir, 'bad.iso') }),
    ).rejects.toThrow(/invalid CD file name "\.\.\/x"/);
  }, 30_000);
});
