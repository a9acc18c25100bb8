"""The prompt -> chunks -> encoder pipeline both hosts share.

Mirrors ``TextConditionalModel`` in ``modules/sd_hijack_clip.py`` (A1111 v1.10.1) and
``ClassicTextProcessingEngine`` in ``backend/text_processing/classic_engine.py`` (Forge dfdcbab6):
75-token chunks with start/end tokens, BREAK, comma backtrack, TI fixes, SD2-style padding
when the end and pad tokens differ, one ``encode_with_transformers`` call per chunk, emphasis
after the encoder.  Host classes supply the option reads and the encoder call.
"""

from __future__ import annotations

import math
from collections import namedtuple

import torch

from standin_common import emphasis as emphasis_module
from standin_common.prompt_parser import parse_prompt_attention

PromptChunkFix = namedtuple("PromptChunkFix", ["offset", "embedding"])


def text_model(transformer):
    """``transformer.text_model`` as the hosts write it.  transformers 5 flattened ``CLIPTextModel``
    (no ``.text_model``: its embeddings, encoder and final LayerNorm sit on the model itself); both
    hosts pin 4.x, so this stands for what a fork on transformers 5 must read instead."""
    return getattr(transformer, "text_model", transformer)


class PromptChunk:
    def __init__(self):
        self.tokens = []
        self.multipliers = []
        self.fixes = []


class Embedding:
    """Mirrors ``modules/textual_inversion/textual_inversion.Embedding`` (the fields the pipeline reads)."""

    def __init__(self, vec, name):
        self.vec = vec
        self.name = name
        self.vectors = (vec["clip_l"] if isinstance(vec, dict) else vec).shape[0]
        self.shorthash = "0123456789ab"


class EmbeddingDatabase:
    """Mirrors ``EmbeddingDatabase`` (A1111 ``textual_inversion.py:111``; Forge
    ``backend/text_processing/textual_inversion.py:111``): ``register_embedding_by_name`` and
    ``find_embedding_at_position``.  How the name is tokenised differs per host (``token_ids``)."""

    def __init__(self):
        self.ids_lookup = {}
        self.word_embeddings = {}
        self.fixes = None

    def token_ids(self, name, model=None):
        raise NotImplementedError

    def register_embedding_by_name(self, embedding, name, model=None):
        ids = self.token_ids(name, model)
        first_id = ids[0]
        if first_id not in self.ids_lookup:
            self.ids_lookup[first_id] = []
        if name in self.word_embeddings:
            lookup = [x for x in self.ids_lookup[first_id] if x[1].name != name]
        else:
            lookup = self.ids_lookup[first_id]
        if embedding is not None:
            lookup += [(ids, embedding)]
        self.ids_lookup[first_id] = sorted(lookup, key=lambda x: len(x[0]), reverse=True)
        self.word_embeddings[name] = embedding
        return embedding

    def find_embedding_at_position(self, tokens, offset):
        for ids, embedding in self.ids_lookup.get(tokens[offset], []):
            if tokens[offset:offset + len(ids)] == ids:
                return embedding, len(ids)
        return None, None


class EmbeddingsWithFixes(torch.nn.Module):
    """Mirrors ``sd_hijack.EmbeddingsWithFixes`` / Forge ``CLIPEmbeddingForTextualInversion``: pastes TI vectors."""

    def __init__(self, wrapped, holder, textual_inversion_key="clip_l"):
        super().__init__()
        self.wrapped = wrapped
        self.holder = holder  # A1111: model_hijack; Forge: the engine's EmbeddingDatabase
        self.textual_inversion_key = textual_inversion_key
        self.weight = wrapped.weight

    def forward(self, input_ids):
        batch_fixes = self.holder.fixes
        self.holder.fixes = None
        inputs_embeds = self.wrapped(input_ids)
        if not batch_fixes or max(len(x) for x in batch_fixes) == 0:
            return inputs_embeds
        vecs = []
        for fixes, tensor in zip(batch_fixes, inputs_embeds):
            for offset, embedding in fixes:
                vec = embedding.vec[self.textual_inversion_key] if isinstance(embedding.vec, dict) else embedding.vec
                emb = vec.to(inputs_embeds)
                emb_len = min(tensor.shape[0] - offset - 1, emb.shape[0])
                tensor = torch.cat([tensor[0:offset + 1], emb[0:emb_len], tensor[offset + 1 + emb_len:]])
            vecs.append(tensor)
        return torch.stack(vecs)


class ChunkPipeline:
    chunk_length = 75

    # --- supplied by the host class -------------------------------------------------------
    def current_opts(self):
        raise NotImplementedError

    def comma_padding_backtrack(self):
        return self.current_opts().comma_padding_backtrack

    def embedding_lookup(self):
        raise NotImplementedError

    def set_fixes(self, fixes):
        raise NotImplementedError

    def tokenize(self, texts):
        return self.tokenizer(texts, truncation=False, add_special_tokens=False)["input_ids"]

    def setup_vocab(self, tokenizer):
        vocab = tokenizer.get_vocab()
        self.comma_token = vocab.get(",</w>", None)
        self.id_start = tokenizer.bos_token_id
        self.id_end = tokenizer.eos_token_id

    # --- shared behaviour -----------------------------------------------------------------
    def empty_chunk(self):
        chunk = PromptChunk()
        chunk.tokens = [self.id_start] + [self.id_end] * (self.chunk_length + 1)
        chunk.multipliers = [1.0] * (self.chunk_length + 2)
        return chunk

    def get_target_prompt_token_count(self, token_count):
        return math.ceil(max(token_count, 1) / self.chunk_length) * self.chunk_length

    def tokenize_line(self, line):
        if self.current_opts().emphasis != "None":
            parsed = parse_prompt_attention(line)
        else:
            parsed = [[line, 1.0]]
        tokenized = self.tokenize([text for text, _ in parsed])
        backtrack = self.comma_padding_backtrack()
        chunks, chunk = [], PromptChunk()
        token_count, last_comma = 0, -1

        def next_chunk(is_last=False):
            nonlocal token_count, last_comma, chunk
            token_count += len(chunk.tokens) if is_last else self.chunk_length
            to_add = self.chunk_length - len(chunk.tokens)
            if to_add > 0:
                chunk.tokens += [self.id_end] * to_add
                chunk.multipliers += [1.0] * to_add
            chunk.tokens = [self.id_start] + chunk.tokens + [self.id_end]
            chunk.multipliers = [1.0] + chunk.multipliers + [1.0]
            last_comma = -1
            chunks.append(chunk)
            chunk = PromptChunk()

        for tokens, (text, weight) in zip(tokenized, parsed):
            if text == "BREAK" and weight == -1:
                next_chunk()
                continue
            position = 0
            while position < len(tokens):
                token = tokens[position]
                if token == self.comma_token:
                    last_comma = len(chunk.tokens)
                elif (backtrack != 0 and len(chunk.tokens) == self.chunk_length and last_comma != -1
                      and len(chunk.tokens) - last_comma <= backtrack):
                    cut = last_comma + 1
                    moved_tokens, moved_mults = chunk.tokens[cut:], chunk.multipliers[cut:]
                    chunk.tokens, chunk.multipliers = chunk.tokens[:cut], chunk.multipliers[:cut]
                    next_chunk()
                    chunk.tokens, chunk.multipliers = moved_tokens, moved_mults
                if len(chunk.tokens) == self.chunk_length:
                    next_chunk()
                embedding, length_in_tokens = self.embedding_lookup().find_embedding_at_position(tokens, position)
                if embedding is None:
                    chunk.tokens.append(token)
                    chunk.multipliers.append(weight)
                    position += 1
                    continue
                emb_len = int(embedding.vectors)
                if len(chunk.tokens) + emb_len > self.chunk_length:
                    next_chunk()
                chunk.fixes.append(PromptChunkFix(len(chunk.tokens), embedding))
                chunk.tokens += [0] * emb_len
                chunk.multipliers += [weight] * emb_len
                position += length_in_tokens
        if chunk.tokens or not chunks:
            next_chunk(is_last=True)
        return chunks, token_count

    def process_texts(self, texts):
        token_count, cache, batch_chunks = 0, {}, []
        for line in texts:
            if line in cache:
                chunks = cache[line]
            else:
                chunks, current = self.tokenize_line(line)
                token_count = max(current, token_count)
                cache[line] = chunks
            batch_chunks.append(chunks)
        return batch_chunks, token_count

    def encode_chunks(self, texts):
        """The chunk loop of ``forward`` / ``__call__``: returns the per-chunk z and the TIs used."""
        batch_chunks, _ = self.process_texts(texts)
        used_embeddings = {}
        zs = []
        for index in range(max(len(x) for x in batch_chunks)):
            batch_chunk = [chunks[index] if index < len(chunks) else self.empty_chunk() for chunks in batch_chunks]
            fixes = [x.fixes for x in batch_chunk]
            self.set_fixes(fixes)
            for chunk_fixes in fixes:
                for _offset, embedding in chunk_fixes:
                    used_embeddings[embedding.name] = embedding
            zs.append(self.process_tokens([x.tokens for x in batch_chunk], [x.multipliers for x in batch_chunk]))
        return zs, used_embeddings

    def process_tokens(self, remade_batch_tokens, batch_multipliers):
        tokens = torch.asarray(remade_batch_tokens)
        if self.id_end != self.id_pad:  # SD2 / OpenCLIP: pad after the end token with the pad token
            for batch_pos in range(len(remade_batch_tokens)):
                index = remade_batch_tokens[batch_pos].index(self.id_end)
                tokens[batch_pos, index + 1:tokens.shape[1]] = self.id_pad
        z = self.encode_with_transformers(tokens)
        pooled = getattr(z, "pooled", None)
        emphasis = emphasis_module.get_current_option(self.current_opts().emphasis)()
        emphasis.tokens = remade_batch_tokens
        emphasis.multipliers = torch.asarray(batch_multipliers).to(z)
        emphasis.z = z
        emphasis.after_transformers()
        z = emphasis.z
        if pooled is not None:
            z.pooled = pooled
        return z
