// Generated from packages/context-schema/schema/context.schema.json by `context-schema generate`. Do not edit.

/** The validated context, keyed by variable name: the types the schema gives each variable. */
export interface ContextValues {
  /**
   * API key clients send as `Authorization: Bearer <key>`. Empty: one is generated on first boot and
   * kept.
   */
  ONEAPP_COPILOT_PASSWORD: string;
  /** More API keys, comma-separated (e.g. one per team member), accepted alongside the main key. */
  ONEAPP_COPILOT_EXTRA_API_KEYS: string[];
  /** Inference engine: LocalAI (llama-cpp backend) or llama.cpp's own llama-server. */
  ONEAPP_COPILOT_ENGINE: 'localai' | 'llama-server';
  /**
   * Role of this VM. standalone = the whole appliance in one VM; lb = the user-facing gateway of a
   * OneFlow service, its backends discovered through OneGate; inference = an engine that only the
   * service's load balancer may use (mutual TLS).
   */
  ONEAPP_COPILOT_ROLE: 'standalone' | 'lb' | 'inference';
  /** Model id clients put in requests and see in /v1/models (the same for both engines). */
  ONEAPP_COPILOT_MODEL_ID: string;
  /**
   * Context window per request, in tokens (an agent's first request alone can take 30-45 k). The engine
   * reserves this times the parallel slots; clamped (with a warning) when RAM is short or beyond the
   * model's trained context.
   */
  ONEAPP_COPILOT_CONTEXT_SIZE: number;
  /**
   * Number format of the engine's KV cache (the context held in RAM). f16 = exact; q8_0 = about half the
   * RAM per token; q4_0 = about a quarter, with a larger quality loss. Never changed by the appliance:
   * when RAM is short the context is clamped instead.
   */
  ONEAPP_COPILOT_KV_CACHE_TYPE: 'f16' | 'q8_0' | 'q4_0';
  /** CPU threads for inference; 0 = the number of physical cores. */
  ONEAPP_COPILOT_THREADS: number;
  /**
   * Requests served at once (engine slots). Each slot has its own context and prompt cache; 1 is fastest
   * per request on a CPU.
   */
  ONEAPP_COPILOT_PARALLEL: number;
  /**
   * Longest reply, in tokens, to a request that sets no max_tokens (Cline, Continue and Codex set none);
   * a request's own max_tokens wins. 0 = no cap: a reply ends only at the model's end token or a full
   * context.
   */
  ONEAPP_COPILOT_MAX_TOKENS: number;
  /**
   * llama-server: save the engine's cached prompts to disk when it stops and restore them when it
   * starts, so the first request after a restart, reconfigure or reboot is no full prefill. Kept only
   * for the same model, template, engine settings and API keys; the files hold users' prompts (code).
   * NO: nothing is written to disk.
   */
  ONEAPP_COPILOT_PROMPT_CACHE_PERSIST: boolean;
  /**
   * Public DNS name of the VM. Put in the certificate and the endpoint URL; with TLS mode auto it turns
   * on Let's Encrypt.
   */
  ONEAPP_COPILOT_HOSTNAME: string;
  /** TCP port of the HTTPS API. Port 80 stays the HTTP redirect and ACME challenge listener. */
  ONEAPP_COPILOT_HTTPS_PORT: number;
  /**
   * auto = Let's Encrypt when a hostname is set, else self-signed (a per-VM CA); custom = the
   * certificate and key given below.
   */
  ONEAPP_COPILOT_TLS_MODE: 'auto' | 'self-signed' | 'letsencrypt' | 'custom';
  /** TLS mode custom: the certificate chain (PEM), base64-encoded. */
  ONEAPP_COPILOT_TLS_CERT: string;
  /** TLS mode custom: the certificate's private key (PEM), base64-encoded. */
  ONEAPP_COPILOT_TLS_KEY: string;
  /** Contact e-mail for the Let's Encrypt account (expiry notices). Empty: register without e-mail. */
  ONEAPP_COPILOT_LETSENCRYPT_EMAIL: string;
  /** ACME directory URL: Let's Encrypt by default; a private ACME CA or Let's Encrypt staging. */
  ONEAPP_COPILOT_ACME_DIRECTORY: string;
  /**
   * Browser origins allowed to call the API, comma-separated (e.g. https://ide.example.com), or * for
   * any. Empty: no cross-origin access.
   */
  ONEAPP_COPILOT_CORS_ORIGINS: string[];
  /**
   * Requests per minute per API key (per client address before authentication); 0 = no limit. Over the
   * limit: HTTP 429.
   */
  ONEAPP_COPILOT_RATE_LIMIT: number;
  /** Open requests at once per API key; 0 = no limit. Over the limit: HTTP 429. */
  ONEAPP_COPILOT_CONNECTION_LIMIT: number;
  /** Seconds a request may wait on the engine (a CPU prefills a 15k-token prompt in minutes). */
  ONEAPP_COPILOT_REQUEST_TIMEOUT: number;
  /** Largest request body in MiB (agents send whole files). */
  ONEAPP_COPILOT_MAX_BODY_SIZE: number;
  /** Expose the engine's Prometheus metrics at /metrics (API key required). */
  ONEAPP_COPILOT_METRICS: boolean;
  /**
   * Also accept HTTP Basic auth whose password is an API key (any user name), for tools that cannot send
   * a Bearer header.
   */
  ONEAPP_COPILOT_BASIC_AUTH: boolean;
}

/** Every ONEAPP_COPILOT_* variable the schema knows. */
export type VariableName = keyof ContextValues;
