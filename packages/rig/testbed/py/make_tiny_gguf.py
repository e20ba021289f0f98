#!/usr/bin/python3
"""Write a random-weight GGUF test model (F16 weights, F32 norms) with gguf-py.

Run with PYTHONPATH=<llama.cpp>/gguf-py and Debian's python3 (python3-numpy, python3-yaml).
Deterministic: the same arguments give a byte-identical file.

The model:
- architecture `mistral3` (the GGUF architecture of Devstral Small 2 / Ministral 3) or `llama`;
- a SentencePiece-style vocabulary (tokenizer.ggml.model = "llama"): Mistral control tokens
  ([INST], [/INST], [SYSTEM_PROMPT], [TOOL_CALLS], [ARGS], [CALL_ID], [THINK], ...),
  256 byte-fallback tokens <0x00>..<0xFF>, then ordinary word pieces ("▁" = space);
- a trained context length (default 32768) and an embedded chat template;
- output biased so that sampling never produces a control token, a byte token >= 0x80
  (invalid UTF-8 on its own) or an ASCII control byte other than TAB/LF.

How the bias works without a bias tensor (llama/mistral3 have no output.bias): hidden
dimension 0 of every token embedding is a large constant, so after the final RMSNorm it is
a large positive value whatever the input; the output rows of banned tokens have a large
negative weight in that column and every other row has 0 there. Banned tokens get logits
around -35 (probability ~1e-15 each at temperature 1); the rest are random.
"""

from __future__ import annotations

import argparse
import json
import string
import sys

import numpy as np

import gguf
from gguf.constants import GGMLQuantizationType, TokenType

# Mistral's control-token block (ids 0..35 as in the v7/v11 tokenizers; <SPECIAL_n> fill the gaps).
CONTROL_TOKENS = [
    "<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]",
    "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]",
] + [f"<SPECIAL_{i}>" for i in range(20, 32)] + ["[ARGS]", "[CALL_ID]", "[THINK]", "[/THINK]"]

SPACE = "\u2581"  # SentencePiece's word-boundary marker

WORDS = """
the of and to in is it that for you this with on as are be at or from by not but have was
what all can if an will one there use do more about which so out up when we your they has
new how time some file code data function return value name type list error test class
import export const let var def self true false none null string number int float bool
print log json http https api key server client model chat request response token stream
user system assistant tool call args result content message role text line path dir
config build run start stop install update get set add remove delete create read write
open close load save find search match replace split join map filter reduce sort push pop
async await promise then catch try throw new object array index length size count sum
max min first last next prev left right top bottom width height color style font
hello world example sample simple quick fast slow good bad yes no ok done fail pass
if else elif while for break continue switch case default public private static void
struct enum interface module package include define main args argv env node python rust
go java script shell bash docker linux debian nginx llama mistral devstral copilot
""".split()


def build_vocab(vocab_size: int) -> tuple[list[str], list[float], list[int], list[int]]:
    """Returns tokens, scores, token types and the ids the model must never emit."""
    tokens: list[str] = []
    types: list[int] = []
    banned: list[int] = []
    for t in CONTROL_TOKENS:
        banned.append(len(tokens))
        tokens.append(t)
        types.append(TokenType.UNKNOWN if t == "<unk>" else TokenType.CONTROL)
    for b in range(256):
        if b >= 0x80 or b == 0x7F or (b < 0x20 and b not in (0x09, 0x0A)):
            banned.append(len(tokens))
        tokens.append(f"<0x{b:02X}>")
        types.append(TokenType.BYTE)

    pieces: list[str] = [SPACE]
    printable = [c for c in string.printable if c not in string.whitespace]
    pieces += printable
    pieces += [SPACE + c for c in printable]
    pieces += [SPACE + w for w in WORDS]
    pieces += [w for w in WORDS]
    letters = string.ascii_lowercase
    pieces += [a + b for a in letters for b in letters]
    pieces += [SPACE + a + b for a in letters for b in letters]
    pieces += [a + b + c for a in "tsaciopmfdrlebnwhg" for b in "haeiorlnu" for c in "etnsrdlyh"]

    seen = set(tokens)
    n_fixed = len(tokens)
    for p in pieces:
        if len(tokens) >= vocab_size:
            break
        if p in seen:
            continue
        seen.add(p)
        tokens.append(p)
        types.append(TokenType.NORMAL)
    i = 0
    while len(tokens) < vocab_size:  # pad with unused tokens if the piece list ran out
        tokens.append(f"<unused_{i}>")
        types.append(TokenType.UNUSED)
        banned.append(len(tokens) - 1)
        i += 1

    scores = [0.0] * n_fixed + [-float(k) for k in range(vocab_size - n_fixed)]
    return tokens, scores, [int(t) for t in types], banned


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", default="mistral3", choices=["mistral3", "llama"])
    ap.add_argument("--name", default="slm-copilot tiny test model")
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-head-kv", type=int, default=1)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--n-ff", type=int, default=768)
    ap.add_argument("--vocab-size", type=int, default=2048)
    ap.add_argument("--ctx", type=int, default=32768, help="trained context length (llama.context_length)")
    ap.add_argument("--rope-theta", type=float, default=1_000_000.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--chat-template-file", default=None)
    ap.add_argument("--dtype", default="f16", choices=["f16", "f32"])
    ap.add_argument("--meta-out", default=None, help="write a JSON summary (params, banned ids) here")
    a = ap.parse_args()

    if a.n_embd % 256 or a.n_ff % 256 or (a.n_head * a.head_dim) % 256:
        print("warning: n_embd, n_ff and n_head*head_dim should be multiples of 256 for K-quants", file=sys.stderr)

    tokens, scores, types, banned = build_vocab(a.vocab_size)
    n_vocab = len(tokens)
    wdtype = np.float16 if a.dtype == "f16" else np.float32

    w = gguf.GGUFWriter(a.out, a.arch)
    w.add_name(a.name)
    w.add_description("Random weights, for tests only. Generated by slm-copilot testbed make_tiny_gguf.py")
    w.add_context_length(a.ctx)
    w.add_embedding_length(a.n_embd)
    w.add_block_count(a.n_layer)
    w.add_feed_forward_length(a.n_ff)
    w.add_head_count(a.n_head)
    w.add_head_count_kv(a.n_head_kv)
    w.add_key_length(a.head_dim)
    w.add_value_length(a.head_dim)
    w.add_rope_dimension_count(a.head_dim)
    w.add_rope_freq_base(a.rope_theta)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if a.dtype == "f16" else gguf.LlamaFileType.ALL_F32)

    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(11)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    if a.chat_template_file:
        with open(a.chat_template_file, encoding="utf-8") as f:
            w.add_chat_template(f.read())

    q_dim = a.n_head * a.head_dim
    kv_dim = a.n_head_kv * a.head_dim
    # numpy shapes are (rows, cols) = ggml (ne1, ne0)
    plan: list[tuple[str, tuple[int, ...], str]] = [("token_embd.weight", (n_vocab, a.n_embd), "embd")]
    for i in range(a.n_layer):
        plan += [
            (f"blk.{i}.attn_norm.weight", (a.n_embd,), "norm"),
            (f"blk.{i}.attn_q.weight", (q_dim, a.n_embd), "lin"),
            (f"blk.{i}.attn_k.weight", (kv_dim, a.n_embd), "lin"),
            (f"blk.{i}.attn_v.weight", (kv_dim, a.n_embd), "lin"),
            (f"blk.{i}.attn_output.weight", (a.n_embd, q_dim), "lin"),
            (f"blk.{i}.ffn_norm.weight", (a.n_embd,), "norm"),
            (f"blk.{i}.ffn_gate.weight", (a.n_ff, a.n_embd), "lin"),
            (f"blk.{i}.ffn_up.weight", (a.n_ff, a.n_embd), "lin"),
            (f"blk.{i}.ffn_down.weight", (a.n_embd, a.n_ff), "lin"),
        ]
    plan += [("output_norm.weight", (a.n_embd,), "norm"), ("output.weight", (n_vocab, a.n_embd), "out")]

    def dtype_of(kind: str):
        return np.float32 if kind == "norm" else wdtype

    for name, shape, kind in plan:
        dt = np.dtype(dtype_of(kind))
        w.add_tensor_info(name, shape, dt, int(np.prod(shape)) * dt.itemsize)

    # Stream tensors one at a time (the Devstral-shaped model has 3 B parameters).
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()

    const_dim = float(np.sqrt(a.n_embd))  # dimension 0 carries about half of every embedding's norm
    banned_arr = np.array(sorted(set(banned)), dtype=np.int64)
    for idx, (name, shape, kind) in enumerate(plan):
        rng = np.random.default_rng([a.seed, idx])
        if kind == "norm":
            t = np.ones(shape, dtype=np.float32)
        elif kind == "embd":
            t = rng.standard_normal(shape, dtype=np.float32)
            t[:, 0] = const_dim
        elif kind == "lin":
            t = rng.standard_normal(shape, dtype=np.float32)
            t *= 0.5 / np.sqrt(shape[1])
        else:  # output: random rows (logit std ~3), the constant column pushes banned tokens down
            t = rng.standard_normal(shape, dtype=np.float32)
            t *= 0.27
            t[:, 0] = 0.0
            t[banned_arr, 0] = -3.0
        w.write_tensor_data(t.astype(dtype_of(kind), copy=False))
        del t
    w.close()

    if a.meta_out:
        with open(a.meta_out, "w", encoding="utf-8") as f:
            json.dump({
                "arch": a.arch, "n_layer": a.n_layer, "n_embd": a.n_embd, "n_head": a.n_head,
                "n_head_kv": a.n_head_kv, "head_dim": a.head_dim, "n_ff": a.n_ff, "n_vocab": n_vocab,
                "context_length": a.ctx, "seed": a.seed, "dtype": a.dtype,
                "n_params": int(sum(int(np.prod(s)) for _, s, _ in plan)),
                "banned_token_ids": [int(x) for x in banned_arr],
                "control_tokens": CONTROL_TOKENS,
            }, f, indent=1)


if __name__ == "__main__":
    main()
