import path from 'node:path';
import type { AppliancePaths } from '@slm-copilot/context-schema';
import { underRoot, type FileSpec } from '@slm-copilot/task-kit';
import { endpointOf, type ReportInputs } from './report.js';

/**
 * The SSH login banner. one-apps rewrites /etc/motd, so ours is an update-motd.d script (run by
 * pam_motd on Ubuntu and Debian) that prints a text file we render. It never shows the key.
 */
export function bannerFiles(paths: AppliancePaths): { text: string; script: string } {
  return {
    text: path.join(paths.configDir, 'motd'),
    script: underRoot(paths.prefix || '/', '/etc/update-motd.d/60-slm-copilot'),
  };
}

type BannerInputs = Pick<
  ReportInputs,
  'host' | 'config' | 'paths' | 'warnings' | 'errors' | 'engine' | 'tls' | 'serving' | 'failure'
>;

/** The engine line(s): which engine serves, and when it is not the requested one, why. */
function engineLines(inputs: BannerInputs): string[] {
  const s = inputs.serving;
  if (!s) return [];
  if (!s.serving) return [`  Engine   : NONE is serving (requested ${s.requested})`];
  if (!s.fallbackReason) return [`  Engine   : ${s.serving} (as requested)`];
  return [
    `  Engine   : ${s.serving} — FALLBACK: ${s.requested} was requested but did not become ready`,
    `  Reason   : ${s.fallbackReason}`,
  ];
}

export function renderBanner(inputs: BannerInputs): FileSpec[] {
  const files = bannerFiles(inputs.paths);
  const lines = [
    '',
    '  SLM-Copilot — sovereign AI coding assistant',
    `  Endpoint : ${endpointOf(inputs)}/v1   (model ${inputs.config.modelId}, ${inputs.engine.name})`,
    `  API key  : sudo cat ${inputs.paths.reportFile}  (with Cline, Continue, Claude Code and Codex lines)`,
    `  TLS      : ${inputs.tls.mode}${inputs.tls.caCertPath ? `, CA ${inputs.tls.caCertPath}` : ''}`,
    `  Health   : ${endpointOf(inputs)}/readyz`,
    ...engineLines(inputs),
    ...(inputs.failure?.what ?? []).map((e) => `  FAILED   : ${e}`),
    ...(inputs.failure ? [`  To do    : ${inputs.failure.fix}`] : []),
    ...inputs.errors.map((e) => `  ERROR    : ${e}`),
    ...(inputs.errors.length > 0
      ? ['  The previous good configuration keeps serving; fix the context and reboot.']
      : []),
    ...inputs.warnings.map((w) => `  WARNING  : ${w}`),
    '',
  ];
  return [
    { path: files.text, text: `${lines.join('\n')}\n`, mode: 0o644 },
    {
      path: files.script,
      text: `#!/bin/sh\n# Rendered by SLM-Copilot (report-writer).\ncat ${files.text} 2>/dev/null || true\n`,
      mode: 0o755,
    },
  ];
}
