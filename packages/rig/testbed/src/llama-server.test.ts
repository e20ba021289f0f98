import { describe, expect, it } from 'vitest';
import { startLlamaServer } from './llama-server.js';

describe('startLlamaServer errors', () => {
  it('reports the output tail when the server exits before it is ready', async () => {
    await expect(
      startLlamaServer({ binary: '/bin/sh', args: ['-c', 'echo "model file is broken" >&2; exit 3'] }),
    ).rejects.toThrow(/exited \(code 3\)[\s\S]*model file is broken/);
  });

  it('times out with the output tail when /health never answers', async () => {
    // a generous timeout: on a loaded machine the shell may need seconds to print its line
    await expect(
      startLlamaServer({
        binary: '/bin/sh',
        args: ['-c', 'echo "still loading" >&2; exec sleep 60'],
        readyTimeoutMs: 8000,
      }),
    ).rejects.toThrow(/not ready within[\s\S]*still loading/);
  });
});
