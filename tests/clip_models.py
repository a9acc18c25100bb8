"""Real ``transformers`` CLIP text models and a real CLIP tokenizer, built offline for tests.

Weights are seeded random; LayerNorm parameters are randomised too, because with weight 1 /
bias 0 the final LayerNorm gives zero-mean outputs and the hosts' "Original" emphasis divides
by that mean (NaN).  ``SHAPES`` holds the real SD shapes; ``small()`` keeps their depth but
shrinks the width so tests stay fast.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

# Real shapes: SD1.5 / SDXL CLIP ViT-L, SD2 OpenCLIP ViT-H (24 layers; Forge loads 23), SDXL OpenCLIP bigG.
SHAPES = {
    "clip_l": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
               "hidden_act": "quick_gelu", "projection_dim": 768},
    "clip_h": {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16, "num_hidden_layers": 24,
               "hidden_act": "gelu", "projection_dim": 1024},
    "clip_g": {"hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 20, "num_hidden_layers": 32,
               "hidden_act": "gelu", "projection_dim": 1280},
}


def small(name: str, layers: int | None = None) -> dict:
    shape = dict(SHAPES[name], hidden_size=32, intermediate_size=64, num_attention_heads=4, projection_dim=32)
    if layers is not None:
        shape["num_hidden_layers"] = layers
    return shape


def build_text_model(shape: dict, vocab_size: int, seed: int = 0) -> CLIPTextModel:
    """A CLIPTextModel with seeded random weights, including its LayerNorms, in eval mode."""
    torch.manual_seed(seed)
    config = CLIPTextConfig(vocab_size=vocab_size, max_position_embeddings=77, eos_token_id=2, **shape)
    model = CLIPTextModel(config).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    model.requires_grad_(False)
    return model


def _bytes_to_unicode() -> dict[int, str]:
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


WORDS = ["a", "the", "cat", "dog", "man", "young", "standing", "in", "forest", "photo", "of", "red", "blue",
         "masterpiece", "best", "quality", "hat", "sitting", "on", "bench"]


@functools.lru_cache(maxsize=1)
def tokenizer_files(directory: str) -> tuple[str, str]:
    """Write a small CLIP BPE vocabulary: every byte, every byte as a word end, some whole words."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab_list = chars + [c + "</w>" for c in chars]
    merges = []
    for word in WORDS:  # merge left to right: c|a -> ca, ca|t</w> -> cat</w>
        pieces = [*list(word[:-1]), word[-1] + "</w>"]
        while len(pieces) > 1:
            merged = pieces[0] + pieces[1]
            if (pieces[0], pieces[1]) not in merges:
                merges.append((pieces[0], pieces[1]))
                if merged not in vocab_list:
                    vocab_list.append(merged)
            pieces = [merged, *pieces[2:]]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(vocab_list))}
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n", encoding="utf-8")
    return str(vocab_file), str(merges_file)


def build_tokenizer(directory: str, pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """SD1/SDXL-L pad with the end token; OpenCLIP tokenizers (SD2, SDXL-G) pad with "!" (id 0)."""
    vocab_file, merges_file = tokenizer_files(directory)
    return CLIPTokenizer(vocab_file, merges_file, pad_token=pad_token)
