/** One preflight check, as the build's refusal and the wizard's list show it; and the units they speak in. */
export type CheckStatus = 'ok' | 'missing' | 'low' | 'info';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
  /** The build cannot start while this check fails. */
  blocking: boolean;
}

export const GB = 1e9;
export const GiB = 1024 ** 3;
export const gb = (bytes: number): string => `${(bytes / GB).toFixed(1)} GB`;
export const gib = (bytes: number): string => `${(bytes / GiB).toFixed(1)} GiB`;
