import { $, which } from 'zx';
import { TaskError, ExitCode } from './errors.js';

/** zx with the defaults our tasks want: no command echo, errors thrown with the command's stderr. */
export const sh = $({ quiet: true, verbose: false });

export async function commandExists(name: string): Promise<boolean> {
  return (await which(name, { nothrow: true })) !== null;
}

export async function requireCommand(name: string, aptPackage = name): Promise<string> {
  const found = await which(name, { nothrow: true });
  if (found === null) {
    throw new TaskError(`the command "${name}" is not installed`, {
      exitCode: ExitCode.environment,
      hint: `apt-get install -y ${aptPackage}`,
    });
  }
  return found;
}
