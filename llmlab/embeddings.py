"""Word embeddings: one-hot and co-occurrence views, skip-gram with negative sampling, queries."""
from __future__ import annotations

import difflib
import math
import re
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from llmlab._validate_input import as_int, is_number
from llmlab.data import load_text

__all__ = [
    "SkipGramConfig", "WordVectors", "UnknownWordError", "words", "load_embedding_corpus",
    "default_config", "build_vocab", "train_skipgram", "cosine_similarity", "pca_2d", "one_hot",
    "cooccurrence_matrix",
]

# Lower-case words, digits allowed, with an inner apostrophe kept ("don't", "emma's").
_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass
class SkipGramConfig:
    """Hyper-parameters of skip-gram with negative sampling (defaults: the course's full recipe)."""

    dim: int = 64  # length of each word vector
    window: int = 5  # max distance between a centre word and a context word
    negatives: int = 5  # random "wrong" context words per true pair
    min_count: int = 5  # rarer words are dropped: too few examples to learn a vector from
    subsample: float = 1e-3  # frequent-word subsampling threshold t (0 turns it off)
    epochs: int = 4  # passes over the corpus
    batch_size: int = 4096  # (centre, context) pairs per optimiser step; large batches run faster
    lr: float = 0.05  # Adam's starting learning rate, decayed linearly to 0
    seed: int = 0
    max_vocab: int | None = 10_000  # keep only the most frequent words (None: no limit)


class UnknownWordError(KeyError):
    """A word that is not in the vocabulary; the message suggests close matches."""

    def __str__(self) -> str:
        # KeyError's default str() wraps the message in quotes; show it as written.
        return str(self.args[0]) if self.args else ""


def words(text: str) -> list[str]:
    """Split text into lower-cased words (letters and digits, inner apostrophes kept)."""
    if not isinstance(text, str):
        raise TypeError(f"words() takes one string of text, got {type(text).__name__}")
    return _WORD_RE.findall(text.lower())


def _clean_wikitext(text: str) -> str:
    """Undo WikiText's tokenisation artefacts: <unk>, ' @-@ ' joins and split-off "'s"."""
    text = text.replace("<unk>", " ")
    text = re.sub(r" @(.)@ ", r"\1", text)  # "state @-@ of" -> "state-of", "1 @,@ 000" -> "1,000"
    return re.sub(r" '(s|t|d|ll|re|ve|m)\b", r"'\1", text)


def load_embedding_corpus(quick: bool = False) -> list[str]:
    """Return the course's embedding corpus as a word list: Austen's three novels (+ WikiText-2)."""
    novels = ["emma", "persuasion", "sense"]
    corpus = [w for name in novels for w in words(load_text(name))]
    if not quick:
        # Tokenised Wikipedia adds numbers, months, places and people beyond Austen's drawing rooms.
        for name in ("wikitext2_valid", "wikitext2_test"):
            corpus += words(_clean_wikitext(load_text(name)))
    return corpus


def default_config(quick: bool = False) -> SkipGramConfig:
    """Return the course's SGNS recipe: the full one, or a smaller one for quick mode and tests."""
    # Pair it with load_embedding_corpus(quick). Measured on 2 shared CPU cores: full (726k words,
    # 9,351-word vocabulary) trains in ~30 s; quick (Austen only, 365k words, 3,980) in ~7 s.
    return SkipGramConfig(epochs=2) if quick else SkipGramConfig()


def _unknown(word: str, vocab: list[str]) -> UnknownWordError:
    """Build the error for an unknown word, suggesting close matches from the vocabulary."""
    close = difflib.get_close_matches(str(word).lower(), vocab, n=3, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else " Check the spelling (words are lower-case)."
    return UnknownWordError(f"{word!r} is not in the vocabulary ({len(vocab):,} words).{hint}")


def cosine_similarity(a, b) -> np.ndarray | float:
    """Cosine of the angle between vectors: a float for two vectors, a matrix for (N, D) x (M, D)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"a has shape {a.shape} but b has shape {b.shape}: the last dimensions must match")
    a_unit = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)  # guard zero vectors
    b_unit = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    if a.ndim == 1 and b.ndim == 1:
        return float(a_unit @ b_unit)
    return np.atleast_2d(a_unit) @ np.atleast_2d(b_unit).T  # (N, M)


def pca_2d(X) -> np.ndarray:
    """Project the rows of X onto their first two principal components: (N, D) -> (N, 2)."""
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"pca_2d needs a (N, D) matrix of numbers, got {type(X).__name__} ({e})") from None
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"pca_2d needs a (N, D) matrix with N >= 2 rows, got shape {X.shape}")
    bad = np.argwhere(~np.isfinite(X))
    if len(bad):
        raise ValueError(f"X holds NaN or inf (first at row {bad[0][0]}, column {bad[0][1]}), so it "
                         "has no principal components: drop or fix those rows first")
    centred = X - X.mean(axis=0)  # (N, D)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)  # rows of vt: principal directions
    axes = vt[:2]  # (2, D) or fewer when D == 1
    # An SVD direction is only defined up to sign; make the largest coordinate positive so the
    # same data always gives the same picture.
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    coords = centred @ (axes * signs[:, None]).T  # (N, 2)
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((len(X), 2 - coords.shape[1]))])
    return coords


def one_hot(index: int, size: int) -> np.ndarray:
    """Return a vector of `size` zeros with a single 1 at `index`."""
    size = as_int(size, "size", 1)
    index = as_int(index, "index", 0)
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a vocabulary of size {size}: use 0 <= index < size")
    v = np.zeros(size, dtype=np.float32)
    v[index] = 1.0
    return v


def cooccurrence_matrix(words: list[str], vocab: list[str], window: int = 2) -> np.ndarray:
    """Count how often each vocab word appears within `window` words of another: (V, V), symmetric."""
    window = as_int(window, "window", 1)
    if isinstance(words, str) or isinstance(vocab, str):
        raise TypeError("words and vocab must be lists of words, not one string: split the text "
                        "with words(text) first")
    if len(vocab) > 5_000:
        raise ValueError(f"a {len(vocab):,} x {len(vocab):,} count matrix is too big to teach with: "
                         "pass a smaller vocab, e.g. the 1,000 most frequent words from build_vocab")
    index = {w: i for i, w in enumerate(vocab)}
    ids = np.array([index.get(w, -1) for w in words], dtype=np.int64)  # -1: not in vocab
    counts = np.zeros((len(vocab), len(vocab)), dtype=np.int64)  # (V, V)
    for d in range(1, window + 1):
        left, right = ids[:-d], ids[d:]
        both = (left >= 0) & (right >= 0)
        # Each pair at distance d counts once in each direction, so the matrix is symmetric.
        np.add.at(counts, (left[both], right[both]), 1)
        np.add.at(counts, (right[both], left[both]), 1)
    return counts


class WordVectors:
    """Trained word vectors with similarity queries: neighbours, analogies and 2-D projections."""

    def __init__(self, words: list[str], vectors, counts=None, loss_history=None):
        self.words = list(words)  # from train_skipgram: most frequent first
        self.vectors = np.asarray(vectors, dtype=np.float32)  # (V, D)
        if self.vectors.ndim != 2 or len(self.words) != len(self.vectors):
            raise ValueError(f"need one row of vectors per word: {len(self.words)} words but "
                             f"vectors of shape {self.vectors.shape}")
        self.counts = None if counts is None else np.asarray(counts, dtype=np.int64)  # (V,)
        self.loss_history = list(loss_history or [])  # mean training loss over successive chunks
        self.train_seconds = None  # set by train_skipgram
        self._index = {w: i for i, w in enumerate(self.words)}
        if len(self._index) != len(self.words):
            raise ValueError("the words must be distinct: each word gets exactly one vector")
        # Unit-length rows turn every cosine similarity into one dot product.
        self._unit = self.vectors / np.maximum(np.linalg.norm(self.vectors, axis=1, keepdims=True), 1e-12)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word) -> bool:
        return isinstance(word, str) and word in self._index

    def __repr__(self) -> str:
        return f"WordVectors({len(self.words):,} words x {self.vectors.shape[1]} dims)"

    def index(self, word: str) -> int:
        """Return the row of `word` (raise UnknownWordError with suggestions if it is unknown)."""
        try:
            return self._index[word]
        except (KeyError, TypeError):
            raise _unknown(word, self.words) from None

    def vector(self, word: str) -> np.ndarray:
        """Return the vector of `word`: (D,)."""
        return self.vectors[self.index(word)]

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity between two words."""
        return float(self._unit[self.index(a)] @ self._unit[self.index(b)])

    def _nearest(self, query: np.ndarray, exclude: set[int], k: int) -> list[tuple[str, float]]:
        """The k words whose vectors are most cosine-similar to `query`, skipping rows in `exclude`."""
        k = as_int(k, "k (how many words to return)", 1)
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        sims = self._unit @ query  # (V,)
        order = np.argsort(-sims, kind="stable")[: k + len(exclude)]
        return [(self.words[i], float(sims[i])) for i in order if i not in exclude][:k]

    def neighbours(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """Return the k most similar words to `word` (itself excluded) with their cosine similarity."""
        i = self.index(word)
        return self._nearest(self._unit[i], {i}, k)

    def analogy(self, a: str, b: str, c: str, k: int = 5) -> list[tuple[str, float]]:
        """Return the words nearest to vec(a) - vec(b) + vec(c): analogy("king", "man", "woman") ~ queen."""
        ia, ib, ic = self.index(a), self.index(b), self.index(c)
        # Unit vectors so that one frequent (long) word does not dominate the sum.
        query = self._unit[ia] - self._unit[ib] + self._unit[ic]  # (D,)
        return self._nearest(query, {ia, ib, ic}, k)

    def project_2d(self, words: list[str]) -> np.ndarray:
        """PCA of the given words' unit vectors down to 2-D: (N, 2), rows in the order of `words`."""
        rows = [self.index(w) for w in words]
        # Unit length first: similarity is an angle, and long vectors of rare words would
        # otherwise claim the principal components.
        return pca_2d(self._unit[rows])


def build_vocab(words: list[str], min_count: int = 1, max_vocab: int | None = None):
    """Return (vocab, counts): words seen >= min_count times, most frequent first (ties alphabetical)."""
    if isinstance(words, str):
        raise TypeError("build_vocab takes a list of words, not a string: use words(text) first")
    min_count = as_int(min_count, "min_count", 1)
    if max_vocab is not None:
        max_vocab = as_int(max_vocab, "max_vocab (None for no limit)", 1)
    ranked = sorted(Counter(words).items(), key=lambda wc: (-wc[1], wc[0]))
    ranked = [(w, c) for w, c in ranked if c >= min_count][:max_vocab]
    return [w for w, _ in ranked], np.array([c for _, c in ranked], dtype=np.int64)


def _check_config(config: SkipGramConfig) -> None:
    """Raise a ValueError naming the first impossible setting in config."""
    if not isinstance(config, SkipGramConfig):
        raise TypeError(f"config must be a SkipGramConfig, got {type(config).__name__}: "
                        "write SkipGramConfig(dim=..., epochs=...)")
    for name in ("dim", "window", "negatives", "min_count", "epochs", "batch_size"):
        as_int(getattr(config, name), f"SkipGramConfig.{name}", 1)
    as_int(config.seed, "SkipGramConfig.seed", 0)
    if not is_number(config.lr) or not config.lr > 0:
        raise ValueError(f"SkipGramConfig.lr must be a finite number > 0, got {config.lr!r}")
    if not is_number(config.subsample) or not config.subsample >= 0:
        raise ValueError(f"SkipGramConfig.subsample must be a finite number >= 0 (0 turns it off), "
                         f"got {config.subsample!r}")
    if config.max_vocab is not None:
        as_int(config.max_vocab, "SkipGramConfig.max_vocab (None for no limit)", 2)


def _skipgram_pairs(ids: torch.Tensor, window: int, gen: torch.Generator):
    """All (centre, context) id pairs within a random window of each centre: two (P,) tensors."""
    n = len(ids)
    # word2vec's dynamic window: each centre looks 1..window words away, so near words count more.
    reach = torch.randint(1, window + 1, (n,), generator=gen)  # (N,)
    centres, contexts = [], []
    for d in range(1, min(window, n - 1) + 1):
        right = reach[:-d] >= d  # the centre at i sees the word at i + d
        left = reach[d:] >= d  # the centre at i + d sees the word at i
        centres += [ids[:-d][right], ids[d:][left]]
        contexts += [ids[d:][right], ids[:-d][left]]
    return torch.cat(centres), torch.cat(contexts)  # (P,), (P,)


def _sgns_loss(centre_emb, context_emb, centres, targets) -> torch.Tensor:
    """Negative-sampling loss; targets (B, 1 + K) hold the true context first, then K negatives."""
    u = centre_emb(centres)  # (B, D)
    v = context_emb(targets)  # (B, 1 + K, D)
    # Elementwise product + sum: faster than bmm for many tiny dot products on a CPU.
    scores = (v * u[:, None, :]).sum(-1)  # (B, 1 + K)
    # Push the true pair's score up and the random pairs' scores down.
    return -(F.logsigmoid(scores[:, 0]) + F.logsigmoid(-scores[:, 1:]).sum(-1)).mean()


def train_skipgram(words: list[str], config: SkipGramConfig | None = None,
                   progress: bool = False) -> WordVectors:
    """Train skip-gram with negative sampling on a word list; return WordVectors with .loss_history."""
    config = config or SkipGramConfig()
    _check_config(config)
    if isinstance(words, str):
        raise ValueError("train_skipgram takes a list of words, not a string: use words(text) first")
    if len(words) == 0:
        raise ValueError("the corpus is empty: pass a non-empty list of words, e.g. words(text)")
    vocab, counts = build_vocab(words, config.min_count, config.max_vocab)
    if len(vocab) < 2:
        raise ValueError(f"min_count={config.min_count} leaves {len(vocab)} word(s) in the vocabulary: "
                         "lower min_count or use a longer corpus")
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(config.seed)  # a private generator: global RNGs untouched
    index = {w: i for i, w in enumerate(vocab)}
    # Out-of-vocabulary words are dropped before windowing, as in word2vec.
    ids = torch.tensor([index[w] for w in words if w in index], dtype=torch.long)  # (N,)

    freq = torch.as_tensor(counts, dtype=torch.float64) / counts.sum()  # (V,)
    # Subsampling keeps word w with probability sqrt(t / f(w)) (at most 1): "the" and "of"
    # carry little meaning but would dominate the pairs, so most of their occurrences are skipped.
    keep_prob = (torch.sqrt(config.subsample / freq).clamp(max=1.0) if config.subsample > 0
                 else torch.ones_like(freq)).float()  # (V,)
    # Negatives follow the unigram distribution raised to 3/4, which gives rarer words a boost;
    # inverting its CDF with searchsorted is much faster than torch.multinomial on a CPU.
    noise_cdf = (freq ** 0.75).cumsum(0).div((freq ** 0.75).sum()).float()  # (V,)

    V, D, K = len(vocab), config.dim, config.negatives
    # Two tables, as in word2vec: a word as a centre (the vectors we keep) and as a context.
    init = (torch.rand(V, D, generator=gen) - 0.5) / D  # (V, D), small so no word starts special
    centre_emb = torch.nn.Embedding.from_pretrained(init, freeze=False)
    context_emb = torch.nn.Embedding.from_pretrained(torch.zeros(V, D), freeze=False)
    opt = torch.optim.Adam([centre_emb.weight, context_emb.weight], lr=config.lr)

    # Estimate the step count up front so the learning rate can decay linearly to zero;
    # a dynamic window of at most w gives each kept centre (w + 1) pairs on average.
    pairs_per_epoch = float((keep_prob.double() * torch.as_tensor(counts)).sum()) * (config.window + 1)
    total_steps = max(1, math.ceil(pairs_per_epoch / config.batch_size) * config.epochs)
    losses = []
    bar = tqdm(total=total_steps, desc="skip-gram", unit="step", disable=not progress)
    try:
        for _ in range(config.epochs):
            kept = ids[torch.rand(len(ids), generator=gen) < keep_prob[ids]]  # (N',) new each epoch
            centres, contexts = _skipgram_pairs(kept, config.window, gen)  # (P,), (P,)
            order = torch.randperm(len(centres), generator=gen)  # (P,)
            for begin in range(0, len(order), config.batch_size):
                batch = order[begin:begin + config.batch_size]  # (B,)
                neg = torch.searchsorted(noise_cdf, torch.rand(len(batch) * K, generator=gen))
                neg = neg.clamp_(max=V - 1).view(len(batch), K)  # (B, K); clamp guards rounding
                targets = torch.cat([contexts[batch, None], neg], dim=1)  # (B, 1 + K)
                loss = _sgns_loss(centre_emb, context_emb, centres[batch], targets)
                for group in opt.param_groups:
                    group["lr"] = config.lr * max(1.0 - len(losses) / total_steps, 1e-3)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.item())
                bar.update(1)
    except KeyboardInterrupt:
        # Stopping early is allowed: the vectors learned so far are still returned.
        print(f"Interrupted after {len(losses)} of {total_steps} steps: keeping the vectors learned so far.")
    finally:
        bar.close()
    chunk = max(1, total_steps // 100)  # a ~100-point history: per-step losses are noisy
    history = [float(np.mean(losses[i:i + chunk])) for i in range(0, len(losses), chunk)]
    result = WordVectors(vocab, centre_emb.weight.detach().numpy(), counts, history)
    result.train_seconds = time.perf_counter() - start
    return result
