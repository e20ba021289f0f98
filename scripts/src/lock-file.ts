import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's artifacts.lock.json (pinned artifacts: the model's url, size, sha256 and provenance). */
export const LOCK_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../artifacts.lock.json');
