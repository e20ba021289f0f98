// The agents the suite runs: exact versions from the npm registry (never a range), and the tarball
// integrity `npm view <package>@<version> dist.integrity` printed for each (checked against the lock
// file of every install). Claude Code: 2.1.197 is the last release whose `engines` accepts Node 20
// (2.1.198 and later ask for node >= 22), so it is what `npm install` picks here.

export type AgentName = 'cline' | 'continue' | 'codex' | 'claude-code';

export interface AgentPin {
  name: AgentName;
  /** The npm package. */
  package: string;
  version: string;
  /** `dist.integrity` of the package's own tarball, from the registry. */
  integrity: string;
  /** The command it installs under node_modules/.bin. */
  bin: string;
  /** The API it speaks (issue #13's table). */
  api: string;
}

export const AGENT_PINS: Readonly<Record<AgentName, AgentPin>> = Object.freeze({
  cline: {
    name: 'cline',
    package: 'cline',
    version: '3.0.65',
    integrity: 'sha512-6P2jgsJHp+JRUzlGR6Rp4W/zAwXPg8ihC2M9ec/VgKS4nnlGCB8Ftn17StcIjYFYtocJRkU8UGUnKF69zhv40Q==',
    bin: 'cline',
    api: '/v1/chat/completions',
  },
  continue: {
    name: 'continue',
    package: '@continuedev/cli',
    version: '1.5.47',
    integrity: 'sha512-gtpewV3RoIOD9dyTtKIBi1SY0VOHRu3Ehe7C/mmnswm+j34MPyrcQhQaWj/m+jdfGO4fNIKdrgGIlLso1ULDFw==',
    bin: 'cn',
    api: '/v1/chat/completions',
  },
  codex: {
    name: 'codex',
    package: '@openai/codex',
    version: '0.171.0',
    integrity: 'sha512-1IOFzL2Xg86tLdw6kDo3GoKbkQENgQi7TI6rlEvN132R7ngSw7SNOIQoTcnKzSZZ8kf9N9GynCweSoaFbqk2Eg==',
    bin: 'codex',
    api: '/v1/responses',
  },
  'claude-code': {
    name: 'claude-code',
    package: '@anthropic-ai/claude-code',
    version: '2.1.197',
    integrity: 'sha512-EqrwbRcI7M5y8jQlayIfTMmbZJ2OQaLOc7KwIWKdryQCdKWUEFr+C9rMovZUuj2Asndi7aqLujEzRtr471gncg==',
    bin: 'claude',
    api: '/v1/messages',
  },
});
