"""Mirrors ``src/open_clip/tokenizer.py`` (open_clip @ bb6e834e): ``_tokenizer`` and ``tokenize``.

A1111 reads ``_tokenizer.encoder`` (``"<start_of_text>"``, ``"<end_of_text>"``, ``",</w>"``) and
calls ``_tokenizer.encode(text)`` (ids without start/end tokens).  The stand-in is the small
offline CLIP BPE of ``tests/clip_models.py`` behind the same names; as in the real vocabulary,
id 0 is ``"!"`` (the SD2/SDXL-G pad) and the end token has the highest id (what ``pool``'s
``argmax`` relies on).
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

import torch

_ROOT = Path(__file__).resolve().parents[4]
if str(_ROOT) not in sys.path:
    sys.path.append(str(_ROOT))

from tests.clip_models import build_tokenizer  # noqa: E402

_HF_SPECIALS = {"<|startoftext|>": "<start_of_text>", "<|endoftext|>": "<end_of_text>"}


class SimpleTokenizer:
    def __init__(self, directory: str):
        self.hf = build_tokenizer(directory, pad_token="!")
        vocab = self.hf.get_vocab()
        self.encoder = {_HF_SPECIALS.get(token, token): index for token, index in vocab.items()}
        self.decoder = {index: token for token, index in self.encoder.items()}
        self.vocab_size = len(self.encoder)
        self.all_special_ids = [self.encoder["<start_of_text>"], self.encoder["<end_of_text>"]]
        self.sot_token_id, self.eot_token_id = self.all_special_ids

    def encode(self, text: str) -> list[int]:
        return list(self.hf(text, add_special_tokens=False)["input_ids"])

    def decode(self, tokens) -> str:
        return self.hf.decode([int(t) for t in tokens])


_directory = tempfile.mkdtemp(prefix="clipskip-open-clip-tokenizer-")
atexit.register(shutil.rmtree, _directory, True)
_tokenizer = SimpleTokenizer(_directory)


def tokenize(texts, context_length: int = 77) -> torch.LongTensor:
    """Start + ids + end, truncated to ``context_length`` (keeping the end token), zero-padded."""
    if isinstance(texts, str):
        texts = [texts]
    sot, eot = _tokenizer.sot_token_id, _tokenizer.eot_token_id
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for row, text in enumerate(texts):
        ids = [sot] + _tokenizer.encode(text) + [eot]
        if len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = eot
        result[row, :len(ids)] = torch.tensor(ids)
    return result
