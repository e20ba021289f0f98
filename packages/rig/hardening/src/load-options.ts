// The load run's settings: the full run (the `load` command's defaults) and the quick one (the test's).
export interface LoadOptions {
  clients: number;
  durationSeconds: number;
  /** llama-server slots (fewer than clients). */
  parallel: number;
  /** ONEAPP_COPILOT_RATE_LIMIT (requests per minute per key). */
  rateLimitPerMinute: number;
  maxTokens: number;
  sampleEverySeconds: number;
  /** Flags added to the appliance's llama-server command line (e.g. `--cache-ram 0`). */
  engineExtraArgs: string[];
  /** Print progress lines to stderr. */
  verbose: boolean;
}

export const QUICK: LoadOptions = {
  clients: 8,
  durationSeconds: 45,
  parallel: 2,
  rateLimitPerMinute: 120,
  maxTokens: 48,
  sampleEverySeconds: 10,
  engineExtraArgs: [],
  verbose: false,
};
export const FULL: LoadOptions = {
  clients: 32,
  durationSeconds: 300,
  parallel: 2,
  rateLimitPerMinute: 120,
  maxTokens: 48,
  sampleEverySeconds: 10,
  engineExtraArgs: [],
  verbose: true,
};
