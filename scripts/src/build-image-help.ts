/** build-image's help: every version and profile need from its one source (no number written here). */
import { LOCALAI_VERSION } from '@slm-copilot/localai-install';
import { NODE_LLAMA_CPP_VERSION } from '@slm-copilot/testbed';
import { REPO_ENV_FILE } from './build-env.js';
import { PROFILE_INFO } from './build-vars.js';
import { NODE_RUNTIME } from './node-runtime.js';

export const BUILD_IMAGE_SUMMARY = 'build the SLM-Copilot appliance image (QCOW2 + manifest + marketplace YAML)';

export const BUILD_IMAGE_USAGE = `npm run build:image -- [options]          (bootstraps pnpm and the workspace first)
       pnpm turbo run build:image -- [options]   (the same, with pnpm)
       tsx --conditions=source scripts/src/build-image.ts [options]`;

const needs = (profile: keyof typeof PROFILE_INFO) => `Needs ${PROFILE_INFO[profile].needs}.`;

export const BUILD_IMAGE_DETAILS = `Settings come from the flags, then SLM_COPILOT_* environment variables, then the
repository's .env (\`pnpm run setup\` writes it: ${REPO_ENV_FILE}), then the defaults. Options go after "--" as
shown: without it npm or turbo take them for their own.

Profiles: one recipe — the same bundle, install stage and artifact mechanism (every artifact through the
mirror staged into the build VM at a fixed path, verified by sha256); they differ only in inputs:
  production  (default) Ubuntu 24.04 cloud image; LocalAI ${LOCALAI_VERSION} (llama-cpp backend) and llama-server;
              the model from artifacts.lock.json (the mirror first, then upstream). ${needs('production')}
  offline     the same image with every input from --mirror (a directory; the Ubuntu cloud image and its
              SHA256SUMS, LocalAI, the model, …). ${needs('offline')}
  test        the Debian 12 base built here from Debian packages, under QEMU TCG; llama-server;
              a stand-in local-ai that cannot serve (LocalAI cannot be downloaded here), so the image boots
              with the default engine and falls back to llama-server; always the tiny random-weight test GGUF
              (--model is refused). ${needs('test')}
llama-server in every profile: the runtime-dispatching build of llama.cpp from
node-llama-cpp@${NODE_LLAMA_CPP_VERSION} (npm registry); the Node runtime:
${NODE_RUNTIME.npmPackage}@${NODE_RUNTIME.version} (npm registry).

Before any download or build it checks what the profile needs (the lock entry, KVM, packer, qemu-img,
xorriso, the llama.cpp build tools, free disk for image + model + cache, RAM) and refuses with every
problem and its fix at once (exit 4).

Examples:
  npm run build:image -- --profile test
  npm run build:image -- --profile offline --mirror /srv/slm-mirror
  npm run build:image -- --profile test --json
  npm run build:image -- --help

Exit codes: 0 built, 2 a bad flag or flag value, 3 a bad setting in the environment or .env,
4 the preflight refused.`;
