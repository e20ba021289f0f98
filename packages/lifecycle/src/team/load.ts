// An inference node's load figure (pure): what it publishes as ONEAPP_COPILOT_LOAD, and OneFlow's
// elasticity reads. (busy slots + queued requests) ÷ slots × 100, an integer percent: 100 = every slot
// busy, above 100 = requests waiting. From llama-server's GET /slots (is_processing per slot) and, when
// the engine runs with --metrics (ONEAPP_COPILOT_METRICS=YES), the `llamacpp:requests_deferred` gauge.
// An engine without /slots (LocalAI) is measured at the node's own gateway instead: the requests nginx has
// in progress (stub_status' `Writing`), which are the engine's busy slots plus its queue.
import { PUBLISHED } from './service-view.js';

export interface EngineLoad {
  slots: number;
  busy: number;
  queued: number;
  /** Integer percent. */
  load: number;
}

/** The load from /slots' JSON and /metrics' text (null when the engine did not answer it). */
export function engineLoad(slotsJson: unknown, metricsText: string | null): EngineLoad | null {
  if (!Array.isArray(slotsJson) || slotsJson.length === 0) return null;
  const slots = slotsJson.length;
  const busy = slotsJson.filter((s) => (s as { is_processing?: unknown }).is_processing === true).length;
  const m = metricsText ? /^llamacpp:requests_deferred\s+([0-9.eE+-]+)\s*$/m.exec(metricsText) : null;
  const queued = m ? Math.max(0, Math.round(Number(m[1])) || 0) : 0;
  return { slots, busy, queued, load: Math.round(((busy + queued) / slots) * 100) };
}

/** stub_status' line `Reading: r Writing: w Waiting: i` (nginx src/http/modules/ngx_http_stub_status_module.c). */
const STUB_WRITING = /^Reading:\s*\d+\s+Writing:\s*(\d+)\s+Waiting:\s*\d+\s*$/m;

/**
 * The load from the gateway's stub_status text read by one request of its own (null when unreadable):
 * `Writing` counts every request in progress, that read included.
 */
export function gatewayLoad(stubStatusText: string | null, slots: number): EngineLoad | null {
  const m = stubStatusText ? STUB_WRITING.exec(stubStatusText) : null;
  if (!m || !(slots > 0)) return null;
  const inFlight = Math.max(0, Number(m[1]) - 1);
  const busy = Math.min(inFlight, slots);
  return { slots, busy, queued: inFlight - busy, load: Math.round((inFlight / slots) * 100) };
}

export interface InferenceStatus {
  /** ip:port of the node's internal gateway, as the lb reaches it. */
  address: string;
  ready: boolean;
  draining: boolean;
  modelId: string;
  contextSize: number;
  /** The configured slot count (published even while the engine does not answer). */
  slots: number;
  load: EngineLoad | null;
}

/** The USER_TEMPLATE pairs an inference node publishes (PUT /vm): never a key, never a secret. */
export function inferencePublication(s: InferenceStatus): Record<string, string> {
  return {
    [PUBLISHED.address]: s.address,
    [PUBLISHED.ready]: s.ready && !s.draining ? 'YES' : 'NO',
    [PUBLISHED.modelId]: s.modelId,
    [PUBLISHED.contextSize]: String(s.contextSize),
    [PUBLISHED.slots]: String(s.load?.slots ?? s.slots),
    [PUBLISHED.load]: String(s.load?.load ?? 0),
    [PUBLISHED.draining]: s.draining ? 'YES' : 'NO',
  };
}
