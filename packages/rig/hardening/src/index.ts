// The hardening suite is tests and scripts; the nginx service drop-in it checks ships with the gateway.
export {
  renderNginxHardening,
  NGINX_CAPABILITIES,
  NGINX_DROP_IN,
  type NginxHardeningOptions,
} from '@slm-copilot/nginx-config';
