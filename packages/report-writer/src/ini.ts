/** One-apps report format: `[Section]` headers, then `key = value` lines. */
export type IniSections = Array<[section: string, entries: Array<[key: string, value: string | number | boolean]>]>;

export function renderIni(sections: IniSections, header = ''): string {
  const out: string[] = header ? [header.trimEnd(), ''] : [];
  for (const [section, entries] of sections) {
    if (/[\]\n\r]/.test(section)) throw new Error(`internal: bad INI section name ${JSON.stringify(section)}`);
    out.push(`[${section}]`);
    for (const [key, raw] of entries) {
      const value = String(raw);
      if (!/^[a-z0-9_]+$/.test(key)) throw new Error(`internal: bad INI key ${JSON.stringify(key)}`);
      if (/[\n\r]/.test(value)) throw new Error(`internal: INI value of ${key} spans lines`);
      out.push(`${key} = ${value}`);
    }
    out.push('');
  }
  return out.join('\n');
}
