/**
 * Reads an OpenNebula `context.sh` (lines `KEY='value'`) without executing it.
 *
 * OpenNebula writes every value in single quotes (a quote inside as `'\''`), which a shell
 * reads literally; we read the same bytes. Double quotes and bare words are understood too,
 * but nothing is ever expanded: a `$…` or backquote is kept as text and reported.
 */
export interface ContextFile {
  values: Record<string, string>;
  /** Lines we could not read, or values that a shell would have expanded. */
  warnings: string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseContextFile(text: string): ContextFile {
  const values: Record<string, string> = {};
  const warnings: string[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;

  const skipBlanks = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const skipRestOfLine = () => {
    while (i < n && text[i] !== '\n') i++;
  };

  while (i < n) {
    skipBlanks();
    if (i >= n) break;
    const c = text[i];
    if (c === '\n' || c === ';') {
      if (c === '\n') line++;
      i++;
      continue;
    }
    if (c === '#') {
      skipRestOfLine();
      continue;
    }
    const startLine = line;
    // NAME=
    let j = i;
    while (j < n && /[A-Za-z0-9_]/.test(text[j]!)) j++;
    let name = text.slice(i, j);
    if (name === 'export' && (text[j] === ' ' || text[j] === '\t')) {
      i = j;
      skipBlanks();
      j = i;
      while (j < n && /[A-Za-z0-9_]/.test(text[j]!)) j++;
      name = text.slice(i, j);
    }
    if (!NAME.test(name) || text[j] !== '=') {
      warnings.push(`line ${startLine}: not an assignment, ignored`);
      skipRestOfLine();
      continue;
    }
    i = j + 1;
    // the word: quoted and unquoted segments until unquoted blank, newline or ';'
    let value = '';
    let expands = false;
    let unterminated = false;
    while (i < n) {
      const ch = text[i]!;
      if (ch === "'") {
        const end = text.indexOf("'", i + 1);
        if (end < 0) {
          unterminated = true;
          value += text.slice(i + 1);
          i = n;
          break;
        }
        const seg = text.slice(i + 1, end);
        line += seg.split('\n').length - 1;
        value += seg;
        i = end + 1;
      } else if (ch === '"') {
        i++;
        let closed = false;
        while (i < n) {
          const d = text[i]!;
          if (d === '"') {
            closed = true;
            i++;
            break;
          }
          if (d === '\\' && i + 1 < n && '"\\$`\n'.includes(text[i + 1]!)) {
            if (text[i + 1] === '\n') line++;
            else value += text[i + 1];
            i += 2;
            continue;
          }
          if (d === '$' || d === '`') expands = true;
          if (d === '\n') line++;
          value += d;
          i++;
        }
        if (!closed) unterminated = true;
      } else if (ch === '\\') {
        if (text[i + 1] === '\n') line++;
        else if (i + 1 < n) value += text[i + 1];
        i += 2;
      } else if (ch === ' ' || ch === '\t' || ch === '\n' || ch === ';') {
        break;
      } else {
        if (ch === '$' || ch === '`') expands = true;
        value += ch;
        i++;
      }
    }
    if (unterminated) {
      warnings.push(`line ${startLine}: ${name} has an unterminated quote, ignored`);
      continue;
    }
    if (expands)
      warnings.push(`line ${startLine}: ${name} contains $ or \` outside single quotes; kept literally, not expanded`);
    values[name] = value;
    // anything after the word on the same line (other than a comment or another assignment) is ignored
    skipBlanks();
    if (i < n && text[i] === '#') skipRestOfLine();
  }
  return { values, warnings };
}
