// Test support (never shipped): real .deb fixtures for the apt-from-mirror tests here and in scripts/.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { $ } from 'zx';

/** A tiny real .deb made with dpkg-deb (fixture packages named slm-fixture-*: never installed by these tests). */
export async function makeDeb(dir: string, name: string, version: string, depends?: string): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'slm-deb-'));
  await mkdir(path.join(root, 'DEBIAN'));
  await mkdir(path.join(root, 'usr/share/doc', name), { recursive: true });
  await writeFile(path.join(root, 'usr/share/doc', name, 'README'), `${name} fixture\n`);
  const control = [
    `Package: ${name}`,
    `Version: ${version}`,
    'Architecture: all',
    'Maintainer: test <t@example.invalid>',
    `Description: ${name} test fixture`,
  ];
  if (depends) control.push(`Depends: ${depends}`);
  await writeFile(path.join(root, 'DEBIAN/control'), `${control.join('\n')}\n`);
  const file = path.join(dir, `${name}_${version}_all.deb`);
  await $({ quiet: true })`dpkg-deb --root-owner-group -Zgzip --build ${root} ${file}`;
  await rm(root, { recursive: true, force: true });
  return file;
}
