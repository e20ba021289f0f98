export {
  ensureBaseImage,
  recipeHash,
  defaultRecipe,
  GUEST_DIR,
  type BaseImage,
  type BaseImageRecipe,
  type EnsureBaseImageOptions,
  type GuestFile,
} from './base-image.js';
export { bootVm, type BootOptions, type Vm, type SshOptions, type SshResult } from './qemu.js';
export {
  makeContextIso,
  renderContextSh,
  quoteContextValue,
  CONTEXT_HEADER,
  CONTEXT_LABEL,
  type ContextIso,
  type MakeContextIsoOptions,
} from './context-iso.js';
export {
  packerValidate,
  packerVersion,
  supportsRequiredPlugins,
  stageTemplate,
  varArgs,
  PACKER_DIR,
  PLUGINS_FILE,
  TEST_PROFILE,
  type PackerValidateOptions,
  type PackerVars,
} from './packer.js';
export {
  runPacker,
  PACKER_PHASES,
  type RunPackerOptions,
  type RunPackerResult,
  type PackerPhaseName,
} from './packer-run.js';
export { buildImage, writeBuildSeed, type BuildImageOptions, type BuildImageResult } from './build-image.js';
export { ensureSshKey, generateSshKey, sshOptions, type SshKey } from './ssh.js';
export { vmCacheDir, withTimeout } from './util.js';
export { ensureHostTools, TOOLS, type HostTool } from './host-tools.js';
export {
  STAGED_MIRROR_DIR,
  MIRROR_DISK_LABEL,
  makeMirrorDisk,
  mirrorDiskBytes,
  type MirrorDisk,
  type MakeMirrorDiskOptions,
} from './mirror-disk.js';
