/**
 * Pinned engine versions. Moving LocalAI is this one line (and re-extracting the contract file
 * contract/localai-<tag>.json from its source, which the contract test reads).
 */
export const LOCALAI_VERSION = 'v4.9.0';

export const localAiRelease = (version = LOCALAI_VERSION) => ({
  version,
  /** goreleaser name template `local-ai-{{ .Tag }}-{{ .Os }}-{{ .Arch }}` (.goreleaser.yaml). */
  binaryAsset: `local-ai-${version}-linux-amd64`,
  /** `{{ .ProjectName }}-{{ .Tag }}-checksums.txt`; "LocalAI" per LocalAI's own install.sh at this tag (unverified against the release page). */
  checksumsAsset: `LocalAI-${version}-checksums.txt`,
  releaseBaseUrl: `https://github.com/mudler/LocalAI/releases/download/${version}`,
  /** The llama-cpp CPU backend, pinned by release tag (never the gallery's `latest-`); digest resolved at build time. */
  backendImage: `quay.io/go-skynet/local-ai-backends:${version}-cpu-llama-cpp`,
  backendName: 'llama-cpp',
});

/**
 * llama-server for the alternative engine: built from the llama.cpp source that the npm package
 * node-llama-cpp ships (llama/gitRelease.bundle, tag v0.4.0 per its package files). The tarball is
 * verified by the npm registry's sha512 integrity; upstream llama.cpp releases publish no checksums.
 */
export const LLAMA_CPP_SOURCE = { npmPackage: 'node-llama-cpp', version: '3.21.1', llamaTag: 'v0.4.0' } as const;
