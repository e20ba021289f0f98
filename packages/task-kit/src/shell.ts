import { $, which } from 'zx';

/** zx with the defaults our tasks want: no command echo, errors thrown with the command's stderr. */
export const sh = $({ quiet: true, verbose: false });

export async function commandExists(name: string): Promise<boolean> {
  return (await which(name, { nothrow: true })) !== null;
}
