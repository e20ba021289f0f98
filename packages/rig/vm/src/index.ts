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
  runPacker,
  packerValidate,
  buildImage,
  writeBuildSeed,
  packerVersion,
  supportsRequiredPlugins,
  stageTemplate,
  varArgs,
  PACKER_DIR,
  PACKER_PHASES,
  PLUGINS_FILE,
  TEST_PROFILE,
  type RunPackerOptions,
  type RunPackerResult,
  type PackerValidateOptions,
  type BuildImageOptions,
  type BuildImageResult,
  type PackerVars,
  type PackerPhaseName,
} from './packer.js';
export { ensureSshKey, generateSshKey, sshOptions, type SshKey } from './ssh.js';
export { cacheRoot, vmCacheDir, freePort, withTimeout, sha256File } from './util.js';
export { ensureHostTools, TOOLS, type HostTool } from './host-tools.js';
export { withFileLock } from './lock.js';
export {
  STAGED_MIRROR_DIR,
  MIRROR_DISK_LABEL,
  makeMirrorDisk,
  mirrorDiskBytes,
  type MirrorDisk,
  type MakeMirrorDiskOptions,
} from './mirror-disk.js';
