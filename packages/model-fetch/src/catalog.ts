import { UsageError } from '@slm-copilot/task-kit';

/**
 * A model the appliance knows how to fetch. Checksums and sizes are never written here: they live in
 * `artifacts.lock.json` — committed for the default model, resolved from the hub's own LFS metadata
 * at build time (`model-fetch resolve`) for the others.
 */
export interface CatalogEntry {
  /** Short id used on the command line and as the default lock key, e.g. `devstral-small-2`. */
  id: string;
  title: string;
  /** Hugging Face repository `owner/name`. */
  repo: string;
  /** File path inside the repository. */
  file: string;
  /** Branch, tag or commit to resolve; `resolve` pins it to a commit id. */
  revision: string;
  quantization: string;
  /** The upstream model's license, as its card states it. */
  license: string;
  /** Rough download size in GB, for humans choosing a model (display only: never used for checks). */
  approxSizeGB: number;
  /** Always null here: see artifacts.lock.json. */
  sha256: null;
  /** Always null here: see artifacts.lock.json. */
  size: null;
  /**
   * True only when the repository and file name were seen in the hub's own file listing while
   * writing this catalog (we build offline); false means "well-known name, not checked".
   */
  verified: boolean;
  /** Where the name was checked, or why it was not. */
  verifiedBy: string;
  notes: string;
}

export const DEFAULT_MODEL_ID = 'devstral-small-2';

export const CATALOG: readonly CatalogEntry[] = Object.freeze([
  {
    id: 'devstral-small-2',
    title: 'Devstral Small 2 24B Instruct 2512, Q4_K_M (the appliance default)',
    repo: 'unsloth/Devstral-Small-2-24B-Instruct-2512-GGUF',
    file: 'Devstral-Small-2-24B-Instruct-2512-Q4_K_M.gguf',
    // the commit the repository's lock entry pins (artifacts.lock.json: size and sha256 are there)
    revision: '6e458b8add42681bfd023de5eab93637694aaf82',
    quantization: 'Q4_K_M',
    license: 'apache-2.0',
    approxSizeGB: 14.3,
    sha256: null,
    size: null,
    verified: false,
    verifiedBy:
      'repository, file, revision, size and SHA-256 published identically by five independent model catalogs; ' +
      "the hub's own listing was not reachable from here. Locked in artifacts.lock.json; " +
      'model-fetch verifies every byte on download',
    notes:
      'Mistral 2512 generation. Its real shape (layers, KV heads, trained context) comes from the manifest ' +
      'read from the file.',
  },
  {
    id: 'qwen2.5-coder-7b',
    title: 'Qwen2.5 Coder 7B Instruct, Q4_K_M (VMs with 8 GB RAM)',
    repo: 'bartowski/Qwen2.5-Coder-7B-Instruct-GGUF',
    file: 'Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf',
    revision: 'main',
    quantization: 'Q4_K_M',
    license: 'apache-2.0',
    approxSizeGB: 4.68,
    sha256: null,
    size: null,
    verified: true,
    verifiedBy: 'file listed in huggingface.co/bartowski/Qwen2.5-Coder-7B-Instruct-GGUF/tree/… (several revisions)',
    notes: 'Smaller fallback for VMs without the RAM for Devstral.',
  },
  {
    id: 'qwen2.5-coder-3b',
    title: 'Qwen2.5 Coder 3B Instruct, Q4_K_M (VMs with 4 GB RAM)',
    repo: 'bartowski/Qwen2.5-Coder-3B-Instruct-GGUF',
    file: 'Qwen2.5-Coder-3B-Instruct-Q4_K_M.gguf',
    revision: 'main',
    quantization: 'Q4_K_M',
    license: 'qwen-research',
    approxSizeGB: 1.93,
    sha256: null,
    size: null,
    verified: true,
    verifiedBy: 'file listed in huggingface.co/bartowski/Qwen2.5-Coder-3B-Instruct-GGUF/tree/828f50e…',
    notes:
      'Smallest fallback. Its repository lists the qwen-research license (not Apache 2.0): ' +
      'check the terms before shipping it.',
  },
] satisfies CatalogEntry[]);

export function findModel(id: string): CatalogEntry {
  const entry = CATALOG.find((e) => e.id === id);
  if (!entry) {
    throw new UsageError(
      `unknown model "${id}"`,
      `known models: ${CATALOG.map((e) => e.id).join(', ')} (see model-fetch catalog)`,
    );
  }
  return entry;
}

/** `https://huggingface.co/<repo>/resolve/<revision>/<file>` — the hub's download URL for one file. */
export function hubDownloadUrl(hub: string, repo: string, revision: string, file: string): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${hub.replace(/\/+$/, '')}/${repo}/resolve/${encodeURIComponent(revision)}/${path}`;
}
