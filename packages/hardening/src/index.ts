export { renderNginxHardening, NGINX_CAPABILITIES, NGINX_DROP_IN, type NginxHardeningOptions } from './nginx-hardening.js';
