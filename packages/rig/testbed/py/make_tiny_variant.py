#!/usr/bin/python3
"""Derive a test-model variant from a GGUF written by make_tiny_gguf.py (F16), editing a few weights.

Run with PYTHONPATH=<llama.cpp>/gguf-py and Debian's python3 (python3-numpy). Deterministic: the same
input and arguments give a byte-identical file. make_tiny_gguf.py itself is left as it is, so the
default tiny model (and its cache key, which hashes that script) never changes; a variant is the
default model (generated with the variant's trained context) plus the edits below.

Recap of the generator's bias: hidden dimension 0 of every token embedding is a constant (sqrt(n_embd)),
so after the final RMSNorm it is a large positive value h0 (about 11) at every position; each output
row's weight in column 0 shifts that token's logit by weight * h0. Banned tokens (control tokens, bytes
that are not valid UTF-8 on their own) have -3 there (logit about -35), the rest 0.

Variant 'agent' (replies end by themselves):
- the end token `</s>` (id 2) is no longer banned: its output row keeps its random part and gets
  `--eos-weight` in column 0 (0.25: about +2.8 on a logit whose random part has a spread of about 3,
  like every other token's). That gives it a real probability at every step, whatever the prompt, so
  with llama-server's default sampling (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05; the
  appliance sets none) a reply ends after a geometric-like number of tokens, a few dozen typically
  (the testbed's tiny-model-variants test prints the distribution). Greedy decoding (temperature 0)
  ends too: the random logits move with the context, and `</s>` becomes the largest within a few
  dozen tokens on the prompts tried (not guaranteed for every prompt: a greedy loop that never
  reaches it would run to the limit). Every other banned token stays banned.

Variant 'tool-caller' ('agent' plus tool calls):
- hidden dimension 1 (column 1 of the embeddings) is zeroed for every token except `[/INST]` (the
  end of a user turn in our template), where it is `--call-signal`; column 1 of the output layer is
  zeroed except in `[TOOL_CALLS]`'s row, which gets `--call-weight` there. At the position of a
  prompt's last token `[/INST]` the final hidden state keeps that dimension (the residual stream
  carries it through both layers; the test measures it), so `[TOOL_CALLS]` is by far the most likely
  first token; after `[/TOOL_RESULTS]` (a tool result, our template's end of prompt) dimension 1 is
  near 0 and `[TOOL_CALLS]` stays banned, so the model answers text and ends.
- `"` and `}` get `--close-weight` in column 0, so that inside the tool-call grammar llama-server
  applies after `[TOOL_CALLS]`, strings and objects close within a few tokens (the grammar forces
  the rest: the tool name, `[ARGS]`, the JSON structure).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import gguf

EOS_ID = 2
INST_END = "[/INST]"
TOOL_CALLS = "[TOOL_CALLS]"
# Defaults per variant (chosen by measuring against llama-server; see the testbed's tiny-model-variants test).
DEFAULTS = {
    "agent": {"eos_weight": 0.25},
    "tool-caller": {"eos_weight": 0.25, "call_signal": 16.0, "call_weight": 6.0, "close_weight": 0.5},
}


def field_value(reader: gguf.GGUFReader, name: str):
    f = reader.get_field(name)
    if f is None:
        raise SystemExit(f"{name} missing in the input GGUF")
    return f.contents()


def copy_metadata(reader: gguf.GGUFReader, writer: gguf.GGUFWriter) -> None:
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        value = field.contents()
        val_type = field.types[0]
        sub_type = field.types[-1] if val_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, value, val_type, sub_type=sub_type)


def edit(tensors: dict[str, np.ndarray], tokens: list[str], a: argparse.Namespace) -> dict[str, object]:
    """Applies the variant's edits in place; returns what changed (for the manifest)."""
    embd = tensors["token_embd.weight"]
    out = tensors["output.weight"]
    changes: dict[str, object] = {"eos_id": EOS_ID, "eos_weight": a.eos_weight, "unbanned_token_ids": [EOS_ID]}
    out[EOS_ID, 0] = a.eos_weight
    if a.variant == "tool-caller":
        inst_end, calls = tokens.index(INST_END), tokens.index(TOOL_CALLS)
        embd[:, 1] = 0.0
        embd[inst_end, 1] = a.call_signal
        out[:, 1] = 0.0
        out[calls, 1] = a.call_weight
        close_ids = [tokens.index('"'), tokens.index("}")]
        out[close_ids, 0] = a.close_weight
        changes.update({
            "call_signal_token_id": inst_end, "call_signal": a.call_signal, "tool_calls_id": calls,
            "call_weight": a.call_weight, "close_token_ids": close_ids, "close_weight": a.close_weight,
        })
    return changes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in", dest="src", required=True, help="F16 GGUF written by make_tiny_gguf.py")
    ap.add_argument("--out", required=True)
    ap.add_argument("--variant", required=True, choices=sorted(DEFAULTS))
    ap.add_argument("--eos-weight", type=float, default=None)
    ap.add_argument("--call-signal", type=float, default=None)
    ap.add_argument("--call-weight", type=float, default=None)
    ap.add_argument("--close-weight", type=float, default=None)
    ap.add_argument("--meta-out", default=None, help="write a JSON summary of the edits here")
    a = ap.parse_args()
    for k, v in DEFAULTS[a.variant].items():
        if getattr(a, k) is None:
            setattr(a, k, v)

    reader = gguf.GGUFReader(a.src)
    arch = field_value(reader, gguf.Keys.General.ARCHITECTURE)
    tokens = list(field_value(reader, gguf.Keys.Tokenizer.LIST))
    # The input is memory-mapped read-only: edit copies of the tensors (small: the tiny model).
    tensors = {t.name: np.array(t.data) for t in reader.tensors}
    changes = edit(tensors, tokens, a)

    w = gguf.GGUFWriter(a.out, arch)
    copy_metadata(reader, w)
    for t in reader.tensors:
        data = tensors[t.name]
        w.add_tensor_info(t.name, data.shape, data.dtype, data.nbytes, t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for t in reader.tensors:
        w.write_tensor_data(tensors[t.name])
    w.close()

    if a.meta_out:
        with open(a.meta_out, "w", encoding="utf-8") as f:
            json.dump({"variant": a.variant, **changes}, f, indent=1)


if __name__ == "__main__":
    main()
