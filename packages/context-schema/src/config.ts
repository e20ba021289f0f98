import type { ContextValues } from './context-values.generated.js';

/** The schema's engines. */
export type Engine = ContextValues['ONEAPP_COPILOT_ENGINE'];
/** The schema's roles: one VM, or a OneFlow service's load balancer or inference node. */
export type Role = ContextValues['ONEAPP_COPILOT_ROLE'];
/** The schema's KV-cache types (llama.cpp `--cache-type-k/-v` names). */
export type KvCacheType = ContextValues['ONEAPP_COPILOT_KV_CACHE_TYPE'];
/** The schema's TLS modes, `auto` resolved. */
export type TlsMode = Exclude<ContextValues['ONEAPP_COPILOT_TLS_MODE'], 'auto'>;

/** The appliance's one configuration type: parsed once from the context, then passed everywhere. */
export interface Config {
  /** The main API key; null = use (or generate) the key kept in the appliance's state directory. */
  apiKey: string | null;
  extraApiKeys: string[];
  engine: Engine;
  /** standalone (one VM), lb (the service's gateway) or inference (an engine behind the lb, mTLS only). */
  role: Role;
  modelId: string;
  /** Tokens each request may use; the engine's total is this × parallelSlots. */
  contextSize: number;
  /**
   * The KV cache's number format, K and V alike (llama-server `--cache-type-k/-v`, LocalAI
   * `cache_type_k/v`). The RAM plan counts it and never changes it.
   */
  kvCacheType: KvCacheType;
  /** 0 = physical cores (resolved against host facts by the engine renderer). */
  threads: number;
  parallelSlots: number;
  /**
   * Reply cap in tokens for a request that sets no max_tokens (llama-server `--n-predict`, LocalAI
   * `parameters.max_tokens`); a request's own max_tokens wins on both engines. 0 = no cap.
   */
  maxTokens: number;
  /**
   * llama-server: the slots' KV cache saved at engine stop and restored at start (ONEAPP_COPILOT_PROMPT_CACHE_PERSIST).
   * LocalAI has no equivalent (its llama-cpp backend serves no slot save/restore).
   */
  promptCachePersist: boolean;
  hostname: string | null;
  httpsPort: number;
  corsOrigins: string[];
  /** Requests per minute per key; 0 = off. */
  rateLimitPerMinute: number;
  /** Concurrent requests per key; 0 = off. */
  connectionLimit: number;
  requestTimeoutSeconds: number;
  maxBodyMegabytes: number;
  metrics: boolean;
  basicAuth: boolean;
  tls: TlsConfig;
}

export interface TlsConfig {
  /** What the operator asked for (`auto` included). */
  requestedMode: TlsMode | 'auto';
  /** What will be served: `auto` resolved to letsencrypt (hostname set) or self-signed. */
  mode: TlsMode;
  /** PEM, decoded from base64; only in custom mode. */
  certificatePem: string | null;
  privateKeyPem: string | null;
  letsEncryptEmail: string | null;
  acmeDirectory: string;
}
