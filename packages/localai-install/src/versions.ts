/**
 * Pinned engine versions. Moving LocalAI is this one line (and re-extracting the contract file
 * contract/localai-<tag>.json from its source, which the contract test reads).
 */
export const LOCALAI_VERSION = 'v4.9.0';

export const localAiRelease = (version = LOCALAI_VERSION) => ({
  version,
  /** goreleaser name template `local-ai-{{ .Tag }}-{{ .Os }}-{{ .Arch }}` (.goreleaser.yaml). */
  binaryAsset: `local-ai-${version}-linux-amd64`,
  /**
   * `{{ .ProjectName }}-{{ .Tag }}-checksums.txt`; "LocalAI" per LocalAI's own install.sh at this tag
   * (unverified against the release page).
   */
  checksumsAsset: `LocalAI-${version}-checksums.txt`,
  releaseBaseUrl: `https://github.com/mudler/LocalAI/releases/download/${version}`,
  /** The llama-cpp CPU backend, pinned by release tag (never the gallery's `latest-`); digest resolved at build. */
  backendImage: `quay.io/go-skynet/local-ai-backends:${version}-cpu-llama-cpp`,
  backendName: 'llama-cpp',
  /** The backend image saved as a tarball (what LocalAI's `ocifile://` reads): its name in a mirror. */
  backendArchive: `local-ai-backends-${version}-cpu-llama-cpp.tar`,
});
