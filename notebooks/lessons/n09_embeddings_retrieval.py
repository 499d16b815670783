"""Lesson 09 support: the FAQ loader, a TF-IDF/LSA vector index, an extractive cited answerer, its query box and the exercises."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from academy.learn import exercise
from academy.learn.widgets import show_text

NOTEBOOK = "09_embeddings_retrieval"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


# ---------------------------------------------------------------- data

@dataclass
class Document:
    """One FAQ entry."""

    id: str
    topic: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        return f"{self.title}. {self.text}"


@dataclass
class LabelledQuery:
    """A question and the ids of the documents that answer it."""

    query: str
    relevant: list[str]


@dataclass
class FaqSet:
    documents: list[Document]
    queries: list[LabelledQuery]

    def by_id(self, doc_id: str) -> Document:
        for doc in self.documents:
            if doc.id == doc_id:
                return doc
        raise KeyError(f"no document with id {doc_id!r}")


def load_faq(path: str | Path) -> FaqSet:
    """Read the FAQ JSON; a query pointing at a missing document is an error, not a silent zero recall."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    docs = [Document(**d) for d in raw["documents"]]
    ids = [d.id for d in docs]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path}: document ids are not unique")
    queries = [LabelledQuery(q["query"], list(q["relevant"])) for q in raw.get("queries", [])]
    for q in queries:
        missing = set(q.relevant) - set(ids)
        if missing:
            raise ValueError(f"{path}: query {q.query!r} names unknown documents {sorted(missing)}")
    return FaqSet(docs, queries)


# ---------------------------------------------------------------- the index

@dataclass
class Hit:
    """One search result."""

    rank: int
    doc_id: str
    title: str
    score: float


@dataclass
class VectorIndex:
    """Documents as unit vectors: TF-IDF, optionally reduced to ``dims`` LSA dimensions by a truncated SVD.

    ``analyzer="word"`` indexes whole words minus English stop words; ``"char"`` indexes
    character 3- to 5-grams inside words, which also matches plurals and other word forms.
    """

    documents: list[Document]
    dims: int | None = None
    analyzer: str = "word"
    seed: int = 0
    vectorizer: Any = field(init=False, repr=False)
    svd: Any = field(init=False, repr=False, default=None)
    doc_vectors: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        if not self.documents:
            raise ValueError("cannot index an empty document list")
        if self.analyzer == "word":
            self.vectorizer = TfidfVectorizer(stop_words="english")
        elif self.analyzer == "char":
            self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
        else:
            raise ValueError(f"analyzer must be 'word' or 'char', got {self.analyzer!r}")
        tfidf = self.vectorizer.fit_transform([d.full_text for d in self.documents])
        if self.dims is not None:
            limit = min(tfidf.shape) - 1
            if not 1 <= self.dims <= limit:
                raise ValueError(f"dims must be between 1 and {limit} for {len(self.documents)} documents, got {self.dims}")
            self.svd = TruncatedSVD(n_components=self.dims, random_state=self.seed).fit(tfidf)
        self.doc_vectors = self._finish(tfidf)

    @property
    def name(self) -> str:
        base = "TF-IDF" if self.dims is None else f"LSA-{self.dims}"
        return base if self.analyzer == "word" else f"char {base}"

    def _finish(self, tfidf: Any) -> np.ndarray:
        vectors = self.svd.transform(tfidf) if self.svd is not None else tfidf.toarray()
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        # A text with no known word is the zero vector: leave it at zero instead of dividing by zero.
        return vectors / np.where(norms == 0, 1.0, norms)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for new texts, in the same space as the documents."""
        return self._finish(self.vectorizer.transform(list(texts)))

    def scores(self, query: str) -> np.ndarray:
        """Cosine similarity of ``query`` with every document."""
        return self.doc_vectors @ self.embed([query])[0]

    def search(self, query: str, k: int = 3) -> list[Hit]:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        scores = self.scores(query)
        order = np.argsort(-scores, kind="stable")[:k]
        return [Hit(r + 1, self.documents[i].id, self.documents[i].title, float(scores[i])) for r, i in enumerate(order)]


def recall_at_k(ranked_ids: Sequence[str], relevant: Sequence[str], k: int) -> float:
    """The share of the relevant documents that appear among the first ``k`` results."""
    if not relevant:
        raise ValueError("a labelled query needs at least one relevant document")
    return len(set(ranked_ids[:k]) & set(relevant)) / len(set(relevant))


def mean_recall(index: VectorIndex, queries: Sequence[LabelledQuery], k: int) -> float:
    return float(np.mean([recall_at_k([h.doc_id for h in index.search(q.query, k)], q.relevant, k) for q in queries]))


# ---------------------------------------------------------------- the answerer

@dataclass
class Evidence:
    sentence: str
    doc_id: str
    score: float


@dataclass
class Answer:
    """An extractive answer: sentences copied from the sources, each cited, or an honest 'not found'."""

    query: str
    text: str
    citations: list[str]
    evidence: list[Evidence]
    hits: list[Hit]
    found: bool


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def answer(index: VectorIndex, query: str, k: int = 3, max_sentences: int = 2, min_score: float = 0.1) -> Answer:
    """Retrieve the top ``k`` documents, then quote the sentences closest to the query, citing each one's source.

    Below ``min_score`` similarity for the best document the answerer abstains: a retrieval system
    that admits it found nothing is more useful than one that quotes something unrelated.
    """
    query = query.strip()
    if not query:
        raise ValueError("type a question first")
    hits = index.search(query, k)
    if not hits or hits[0].score < min_score:
        return Answer(query, "I could not find this in the FAQ. Try other words, or ask the service desk.", [], [], hits, False)
    by_id = {d.id: d for d in index.documents}
    candidates = [(s, h) for h in hits for s in split_sentences(by_id[h.doc_id].text)]
    # A sentence is scored together with its document's title: "Run scancel ..." only mentions
    # cancelling through the title "How do I cancel a job?".
    sims = index.embed([f"{by_id[h.doc_id].title} {s}" for s, h in candidates]) @ index.embed([query])[0]
    # Adding the document's own score makes sentences from better-matching documents win.
    ranked = sorted(range(len(candidates)), key=lambda i: -(sims[i] + candidates[i][1].score))[:max_sentences]
    # Quote in reading order: by document rank, then by position in the document.
    ranked.sort()
    evidence = [Evidence(candidates[i][0], candidates[i][1].doc_id, float(sims[i])) for i in ranked]
    citations = list(dict.fromkeys(e.doc_id for e in evidence))
    text = " ".join(f"{e.sentence} [{e.doc_id}]" for e in evidence)
    return Answer(query, text, citations, evidence, hits, True)


def rag_explorer(index: VectorIndex, question: str = "How do I see whether my job is still running?"):
    """A question box and a k slider; shows the cited answer and the retrieved sources."""
    import ipywidgets as widgets

    box_q = widgets.Text(value=question, description="question", layout=widgets.Layout(width="70%"),
                         continuous_update=False)
    k = widgets.IntSlider(value=3, min=1, max=min(10, len(index.documents)), description="top k")
    out = widgets.Output()
    box = widgets.VBox([box_q, k, out])
    box.result = None

    def redraw(_change: Any = None) -> None:
        try:
            result = answer(index, box_q.value, k.value)
        except ValueError as exc:
            box.result = None
            show_text(out, f"⚠️ {exc}")
            return
        box.result = result
        lines = ["Answer: " + result.text, "", "Retrieved:"]
        lines += [f"  {h.rank}. [{h.doc_id}] {h.title}  (cosine {h.score:.2f})" for h in result.hits]
        show_text(out, "\n".join(lines))

    box_q.observe(redraw, names="value")
    k.observe(redraw, names="value")
    redraw()
    return box


# ---------------------------------------------------------------- exercises

@exercise(
    NOTEBOOK, "cosine", title="Cosine similarity",
    hint="Divide the dot product of a and b by the product of their lengths (np.linalg.norm).",
    solution="```python\ndef cosine_similarity(a, b):\n    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))\n```",
)
def cosine_exercise(fn) -> str:
    a, b = np.array([1.0, 2.0, 0.0]), np.array([2.0, 1.0, 1.0])
    got = float(fn(a, b))
    want = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    if abs(got - float(a @ b)) < 1e-9:
        raise AssertionError("That is the plain dot product: divide by both vectors' lengths so that long documents do not win.")
    assert abs(got - want) < 1e-9, f"For {a} and {b} the cosine is {want:.4f}, you gave {got:.4f}."
    same = float(fn(a, 5 * a))
    assert abs(same - 1) < 1e-9, f"A vector and a scaled copy of it point the same way: cosine 1, you gave {same:.4f}."
    ortho = float(fn(np.array([1.0, 0.0]), np.array([0.0, 3.0])))
    assert abs(ortho) < 1e-9, f"Perpendicular vectors share nothing: cosine 0, you gave {ortho:.4f}."
    return "Cosine ignores length, so a long document and a short query can still match."


@exercise(
    NOTEBOOK, "top_k", title="Top-k search",
    hint="np.argsort sorts ascending: sort the negated scores (or reverse), then keep the first k indices.",
    solution="```python\ndef top_k(scores, k):\n    return list(np.argsort(-np.asarray(scores))[:k])\n```",
)
def top_k_exercise(fn) -> str:
    scores = np.array([0.1, 0.9, 0.3, 0.75, 0.0, 0.5])
    raw = [float(i) for i in fn(scores, 3)]
    if raw == [0.9, 0.75, 0.5]:
        raise AssertionError("Return the positions (indices) of the best documents, not their scores.")
    got = [int(i) for i in raw]
    if got == [4, 0, 2]:
        raise AssertionError("Those are the three LOWEST scores: search wants the most similar first.")
    if sorted(got) == [1, 3, 5] and got != [1, 3, 5]:
        raise AssertionError("Right documents, wrong order: the best match should come first.")
    assert got == [1, 3, 5], f"The top 3 of {scores.tolist()} are at positions [1, 3, 5], you gave {got}."
    assert len(list(fn(scores, 1))) == 1, "With k=1 return exactly one index."
    return None


@exercise(
    NOTEBOOK, "recall_at_k", title="Recall@k",
    hint="Count how many relevant ids appear in ranked_ids[:k], and divide by the number of relevant ids.",
    solution="```python\ndef recall_at_k(ranked_ids, relevant, k):\n    return len(set(ranked_ids[:k]) & set(relevant)) / len(set(relevant))\n```",
)
def recall_exercise(fn) -> str:
    ranked = ["a", "b", "c", "d", "e"]
    cases = [(["b", "e"], 3, 0.5), (["b", "e"], 5, 1.0), (["x"], 5, 0.0), (["a"], 1, 1.0)]
    for relevant, k, want in cases:
        got = float(fn(ranked, relevant, k))
        if relevant == ["b", "e"] and k == 3 and abs(got - 1 / 3) < 1e-9:
            raise AssertionError("You divided by k: that is precision@k. Recall divides by the number of RELEVANT documents.")
        if relevant == ["b", "e"] and k == 3 and abs(got - 1.0) < 1e-9:
            raise AssertionError("Only look at the first k results: 'e' is at rank 5, outside the top 3.")
        assert abs(got - want) < 1e-9, f"ranked={ranked}, relevant={relevant}, k={k}: recall is {want}, you gave {got}."
    return "Recall@k answers: did the answer reach the top k that the answerer reads?"
