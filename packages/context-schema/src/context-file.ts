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

/** A word as the shell would read it, without expanding anything. */
interface Word {
  value: string;
  /** A `$` or backquote outside single quotes: a shell would have expanded it. */
  expands: boolean;
  unterminated: boolean;
}

/** The position in the text (and its line number) shared by the small readers below. */
class Cursor {
  i = 0;
  line = 1;
  constructor(readonly text: string) {}
  get done(): boolean {
    return this.i >= this.text.length;
  }
  get char(): string | undefined {
    return this.text[this.i];
  }
  skipBlanks(): void {
    while (!this.done && (this.char === ' ' || this.char === '\t')) this.i++;
  }
  skipRestOfLine(): void {
    while (!this.done && this.char !== '\n') this.i++;
  }
  /** The run of name characters from here (not consumed). */
  nameEnd(from = this.i): number {
    let j = from;
    while (j < this.text.length && /[A-Za-z0-9_]/.test(this.text[j]!)) j++;
    return j;
  }
}

/** `'…'`: everything literally up to the next single quote. */
function singleQuoted(c: Cursor, word: Word): void {
  const end = c.text.indexOf("'", c.i + 1);
  if (end < 0) {
    word.unterminated = true;
    word.value += c.text.slice(c.i + 1);
    c.i = c.text.length;
    return;
  }
  const seg = c.text.slice(c.i + 1, end);
  c.line += seg.split('\n').length - 1;
  word.value += seg;
  c.i = end + 1;
}

/** `"…"`: backslash escapes of `"\\$\`` and newline; `$` and backquotes kept (and reported). */
function doubleQuoted(c: Cursor, word: Word): void {
  c.i++;
  while (!c.done) {
    const d = c.char!;
    if (d === '"') {
      c.i++;
      return;
    }
    const next = c.text[c.i + 1];
    if (d === '\\' && next !== undefined && '"\\$`\n'.includes(next)) {
      if (next === '\n') c.line++;
      else word.value += next;
      c.i += 2;
      continue;
    }
    if (d === '$' || d === '`') word.expands = true;
    if (d === '\n') c.line++;
    word.value += d;
    c.i++;
  }
  word.unterminated = true;
}

/** The word: quoted and unquoted segments until an unquoted blank, newline or ';'. */
function readWord(c: Cursor): Word {
  const word: Word = { value: '', expands: false, unterminated: false };
  while (!c.done) {
    const ch = c.char!;
    if (ch === "'") singleQuoted(c, word);
    else if (ch === '"') doubleQuoted(c, word);
    else if (ch === '\\') {
      if (c.text[c.i + 1] === '\n') c.line++;
      else if (c.i + 1 < c.text.length) word.value += c.text[c.i + 1];
      c.i += 2;
    } else if (ch === ' ' || ch === '\t' || ch === '\n' || ch === ';') break;
    else {
      if (ch === '$' || ch === '`') word.expands = true;
      word.value += ch;
      c.i++;
    }
    if (word.unterminated) break;
  }
  return word;
}

/** `NAME=` or `export NAME=` from here: the name, with the cursor after `=`; null when it is no assignment. */
function readName(c: Cursor): string | null {
  let j = c.nameEnd();
  let name = c.text.slice(c.i, j);
  if (name === 'export' && (c.text[j] === ' ' || c.text[j] === '\t')) {
    c.i = j;
    c.skipBlanks();
    j = c.nameEnd();
    name = c.text.slice(c.i, j);
  }
  if (!NAME.test(name) || c.text[j] !== '=') return null;
  c.i = j + 1;
  return name;
}

export function parseContextFile(text: string): ContextFile {
  const values: Record<string, string> = {};
  const warnings: string[] = [];
  const c = new Cursor(text);
  while (!c.done) {
    c.skipBlanks();
    if (c.done) break;
    if (c.char === '\n' || c.char === ';') {
      if (c.char === '\n') c.line++;
      c.i++;
      continue;
    }
    if (c.char === '#') {
      c.skipRestOfLine();
      continue;
    }
    const startLine = c.line;
    const name = readName(c);
    if (name === null) {
      warnings.push(`line ${startLine}: not an assignment, ignored`);
      c.skipRestOfLine();
      continue;
    }
    const word = readWord(c);
    if (word.unterminated) {
      warnings.push(`line ${startLine}: ${name} has an unterminated quote, ignored`);
      continue;
    }
    if (word.expands)
      warnings.push(`line ${startLine}: ${name} contains $ or \` outside single quotes; kept literally, not expanded`);
    values[name] = word.value;
    // anything after the word on the same line (other than a comment or another assignment) is ignored
    c.skipBlanks();
    if (c.char === '#') c.skipRestOfLine();
  }
  return { values, warnings };
}
