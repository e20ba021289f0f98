import { underRoot } from '@slm-copilot/task-kit';

/**
 * Where the appliance keeps things. Renderers take this instead of hard-coding paths, so a test
 * can put the whole layout under a temp dir (`appliancePaths('/tmp/x')`) and run the real nginx
 * or engine on the render.
 */
export interface AppliancePaths {
  /** The prefix everything below lives under ('' in the appliance). */
  prefix: string;
  /** Generated state kept across boots (0700): API key, TLS CA, last good configuration. */
  stateDir: string;
  /** The generated API key when ONEAPP_COPILOT_PASSWORD is empty (0600). */
  apiKeyFile: string;
  /** Rendered configuration of our own (env files, chat template). */
  configDir: string;
  /** The GGUF model, its manifest, and LocalAI's model YAML (LocalAI's models path). */
  modelsDir: string;
  logDir: string;
  systemdDir: string;
  engine: {
    host: string;
    port: number;
    localaiBinary: string;
    localaiBackendsDir: string;
    llamaServerBinary: string;
    /** Our Devstral chat template, used by both engines. */
    chatTemplate: string;
  };
  tls: {
    dir: string;
    /** Public: clients download it to trust the appliance. */
    caCert: string;
    caKey: string;
    cert: string;
    key: string;
  };
  nginx: {
    confDir: string;
    siteFile: string;
    /** Webroot for ACME http-01 challenges (outside the 0700 state dir: nginx's workers read it). */
    acmeWebroot: string;
    /** nginx's own files of ours: auth map, error pages, snippets. */
    snippetsDir: string;
  };
  /** The one-apps report file. */
  reportFile: string;
}

export function appliancePaths(prefix = ''): AppliancePaths {
  const p = (appliancePath: string) => underRoot(prefix || '/', appliancePath);
  return {
    prefix,
    stateDir: p('/var/lib/slm-copilot'),
    apiKeyFile: p('/var/lib/slm-copilot/api-key'),
    configDir: p('/etc/slm-copilot'),
    modelsDir: p('/opt/slm-copilot/models'),
    logDir: p('/var/log/slm-copilot'),
    systemdDir: p('/etc/systemd/system'),
    engine: {
      host: '127.0.0.1',
      port: 8080,
      localaiBinary: p('/opt/local-ai/bin/local-ai'),
      localaiBackendsDir: p('/opt/local-ai/backends'),
      llamaServerBinary: p('/opt/llama.cpp/bin/llama-server'),
      chatTemplate: p('/etc/slm-copilot/devstral-chat-template.jinja'),
    },
    tls: {
      dir: p('/etc/slm-copilot/tls'),
      caCert: p('/etc/slm-copilot/tls/ca.crt'),
      caKey: p('/var/lib/slm-copilot/tls/ca.key'),
      cert: p('/etc/slm-copilot/tls/server.crt'),
      key: p('/etc/slm-copilot/tls/server.key'),
    },
    nginx: {
      confDir: p('/etc/nginx'),
      siteFile: p('/etc/nginx/conf.d/slm-copilot.conf'),
      acmeWebroot: p('/var/lib/slm-copilot-acme'),
      snippetsDir: p('/etc/nginx/slm-copilot'),
    },
    reportFile: p('/etc/one-appliance/config'),
  };
}
