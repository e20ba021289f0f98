// What each agent reaches for besides the appliance, with its telemetry and update switches off as the
// suite sets them (each attempt was seen in the sandbox, refused there, and is named in the agent's own
// code). The sandboxed tests allow these and nothing else; a new attempt fails them until it is named here.
import type { KnownAttempt } from './network.js';
import type { AgentName } from './pins.js';

export const KNOWN_ATTEMPTS: Readonly<Record<AgentName, readonly KnownAttempt[]>> = Object.freeze({
  // Its version check at every start, with no switch to turn it off (the CLI's bundle: GET
  // https://api.continue.dev/cn/info?id=<machine id>; CONTINUE_API_BASE only moves it).
  continue: [{ what: "Continue's version check (api.continue.dev)", lookup: /^api\.continue\.dev$/ }],
  // With `telemetryOptOut` on disk before `cline auth` (without a settings file the CLI counts as opted in
  // and `cline auth` exports OpenTelemetry to https://otel.cline.bot), the task, opted out, still creates
  // its PostHog client at https://data.cline.bot (feature flags): named in its binary.
  cline: [{ what: "Cline's PostHog client (data.cline.bot), by the task", lookup: /^data\.cline\.bot$/ }],
  // With check_for_update_on_startup and analytics off: the hosts its binary names for the curated plugins
  // sync (https://github.com/openai/plugins.git, https://chatgpt.com/backend-api/plugins/export/curated)
  // and the release check (https://api.github.com/repos/openai/codex/releases/latest).
  codex: [
    { what: "Codex's curated plugins sync (github.com)", lookup: /^github\.com$/ },
    { what: "Codex's curated plugins sync or release check (api.github.com)", lookup: /^api\.github\.com$/ },
    { what: "Codex's curated plugins export (chatgpt.com)", lookup: /^chatgpt\.com$/ },
  ],
  // None with CLAUDE_QUIET_ENV (telemetry, error reports, auto-update and non-essential traffic off).
  'claude-code': [],
});
