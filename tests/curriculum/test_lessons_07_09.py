"""Lesson support for notebooks 07-09 (CNN, tiny GPT, retrieval): checks, widget callbacks and models."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from support.lessons import DATA, not_attempted, one_torch_thread, outcome, progress  # noqa: F401 (autouse fixtures)
from academy_lessons import n07_cnn_vision as n07
from academy_lessons import n08_tiny_gpt as n08
from academy_lessons import n09_embeddings_retrieval as n09

# ---------------------------------------------------------------- 07 CNN vision

def small_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(24, 10),
    )


def test_conv2d_check_accepts_loops_and_explains_flipped_or_padded_output():
    """Does the conv2d check pass the reference loop, and name the mistake for a flipped kernel or 'same' output?"""
    assert outcome(n07.conv2d_exercise, n07.conv2d_reference)[0]
    passed, msg = outcome(n07.conv2d_exercise, lambda img, k: n07.conv2d_reference(img, k[::-1, ::-1]))
    assert not passed and "flipped" in msg
    passed, msg = outcome(n07.conv2d_exercise, lambda img, k: np.zeros_like(img))
    assert not passed and "pad" in msg
    assert outcome(n07.conv2d_exercise, not_attempted) == (False, "Not attempted yet: replace the placeholder with your code.")


def test_output_size_and_param_checks_name_the_missing_term():
    """Do the size and parameter-count checks pass the formula and point at forgotten padding or biases?"""
    assert outcome(n07.output_size_exercise, n07.conv_output_size_reference)[0]
    passed, msg = outcome(n07.output_size_exercise, lambda n, k, stride=1, padding=0: (n + padding - k) // stride + 1)
    assert not passed and "both sides" in msg
    assert outcome(n07.conv_params_exercise, n07.conv_params_reference)[0]
    passed, msg = outcome(n07.conv_params_exercise, lambda ci, co, k: co * ci * k * k)
    assert not passed and "bias" in msg
    layer = torch.nn.Conv2d(8, 16, 3)
    assert n07.conv_params_reference(8, 16, 3) == sum(p.numel() for p in layer.parameters())


def test_feature_maps_capture_each_conv_layer_and_the_viewer_follows_its_sliders():
    """Does feature_maps return each conv layer's filters and maps, and does moving the layer slider redraw that layer?"""
    model = small_cnn()
    image = np.random.default_rng(0).uniform(size=(8, 8))
    first = n07.feature_maps(model, image, 0)
    assert first.kernels.shape == (4, 1, 3, 3) and first.maps.shape == (4, 8, 8) and (first.maps >= 0).all()
    second = n07.feature_maps(model, image, 1)
    assert second.maps.shape == (6, 4, 4)
    with pytest.raises(ValueError, match="between 0 and 1"):
        n07.feature_maps(model, image, 2)
    viewer = n07.feature_map_viewer(model, [image, image * 0.5], [3, 5])
    image_slider, layer_slider, channel_slider = viewer.children[0].children
    assert viewer.result.layer == 0 and channel_slider.max == 3
    layer_slider.value = 1
    assert viewer.result.layer == 1 and channel_slider.max == 5
    assert model.training, "the viewer must not leave the model in eval mode"


# ---------------------------------------------------------------- 08 tiny GPT

def test_tokenizer_round_trips_and_rejects_unknown_characters():
    """Does the character tokenizer decode what it encodes, and say which characters it does not know?"""
    tok = n08.CharTokenizer.from_text("De zee, the sea.")
    assert tok.decode(tok.encode("the zee")) == "the zee"
    with pytest.raises(ValueError, match="'iqu'"):
        tok.encode("quiet")


def test_baselines_match_hand_computed_cross_entropy():
    """Do the unigram and bigram baselines equal the cross-entropies computed by hand on a tiny text?"""
    vocab = ["a", "b"]
    # train 'aab': counts a=2, b=1, add-one smoothing over 2 symbols -> p(a)=3/5, p(b)=2/5
    assert n08.unigram_cross_entropy("aab", "ab", vocab) == pytest.approx(-(math.log(3 / 5) + math.log(2 / 5)) / 2)
    # bigrams of 'aab': (a,a), (a,b); val 'ab' has one bigram (a,b): (1 + k) / (2 + 2k)
    assert n08.bigram_cross_entropy("aab", "ab", vocab, k=0.5) == pytest.approx(-math.log(1.5 / 3))


def test_config_rejects_heads_that_do_not_divide_the_width():
    """Is a GPT config with n_embd not divisible by n_head rejected before any model is built?"""
    with pytest.raises(ValueError, match="divisible"):
        n08.GPTConfig(vocab_size=10, n_embd=30, n_head=4)


def test_attention_paths_agree_and_the_model_cannot_see_the_future():
    """Do the fused and inspectable attention paths agree, and do later characters leave earlier logits unchanged?"""
    torch.manual_seed(0)
    model = n08.TinyGPT(n08.GPTConfig(vocab_size=12, block_size=16, n_layer=2, n_head=2, n_embd=16)).eval()
    idx = torch.randint(12, (1, 10))
    fused, _ = model(idx)
    maps = model.attention_maps(idx)
    for block in model.blocks:
        block.attn.record = True
    recorded, _ = model(idx)
    assert torch.allclose(fused, recorded, atol=1e-5)
    changed = idx.clone()
    changed[0, 7:] = (changed[0, 7:] + 1) % 12
    assert torch.allclose(model(changed)[0][0, :7], recorded[0, :7], atol=1e-5)
    assert len(maps) == 2 and maps[0].shape == (2, 10, 10)
    assert torch.allclose(maps[0].sum(-1), torch.ones(2, 10)) and torch.all(maps[1].triu(1) == 0)


def test_attention_map_callback_and_explorer():
    """Does attention_map return a causal row-stochastic matrix, and does the explorer redraw for a new head or warn on bad input?"""
    text = "de wind komt van zee"
    tok = n08.CharTokenizer.from_text(text)
    model = n08.TinyGPT(n08.GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=16))
    att = n08.attention_map(model, tok, "de wind", layer=1, head=1)
    assert att.shape == (7, 7) and np.allclose(att.sum(1), 1) and np.allclose(np.triu(att, 1), 0)
    with pytest.raises(ValueError, match="head"):
        n08.attention_map(model, tok, "de", layer=0, head=2)
    box = n08.attention_explorer(model, tok, "de wind")
    prompt, sliders = box.children[0], box.children[1]
    sliders.children[1].value = 1
    assert box.result.shape == (7, 7)
    prompt.value = "xyz"  # not in the vocabulary
    assert box.result is None


def test_tiny_gpt_learns_and_evaluate_covers_all_data():
    """Does a few dozen steps of training lower the exact validation loss of a tiny GPT?"""
    text = "the sea and the see. " * 20
    tok = n08.CharTokenizer.from_text(text)
    data = torch.tensor(tok.encode(text))
    torch.manual_seed(0)
    model = n08.TinyGPT(n08.GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16))
    before = n08.evaluate(model, data, 16)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        _, loss = model(*n08.get_batch(data, 16, 16, gen))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert n08.evaluate(model, data, 16) < before - 0.5
    assert len(model.generate(torch.tensor([[0]]), 20)[0]) == 21


def test_gpt_exercises_pass_references_and_catch_classic_mistakes():
    """Do the mask, attention and uniform-loss checks pass correct answers and name an upper triangle, a missing scale and bits?"""
    assert outcome(n08.causal_mask_exercise, lambda T: torch.ones(T, T, dtype=torch.bool).tril())[0]
    passed, msg = outcome(n08.causal_mask_exercise, lambda T: torch.ones(T, T, dtype=torch.bool).triu())
    assert not passed and "FUTURE" in msg
    assert outcome(n08.attention_exercise, n08._reference_attention)[0]
    unscaled = lambda q, k, v: n08._reference_attention(q * math.sqrt(q.size(-1)), k, v)  # noqa: E731
    passed, msg = outcome(n08.attention_exercise, unscaled)
    assert not passed and "sqrt(d)" in msg
    assert outcome(n08.uniform_loss_exercise, math.log)[0]
    passed, msg = outcome(n08.uniform_loss_exercise, math.log2)
    assert not passed and "bits" in msg


# ---------------------------------------------------------------- 09 embeddings and retrieval

@pytest.fixture(scope="module")
def faq():
    return n09.load_faq(DATA / "ai_factory_faq.json")


def test_load_faq_rejects_queries_pointing_at_missing_documents(tmp_path):
    """Is a labelled query that names an unknown document reported instead of silently scoring zero?"""
    bad = {"documents": [{"id": "a", "topic": "t", "title": "A", "text": "x"}], "queries": [{"query": "q", "relevant": ["b"]}]}
    path = tmp_path / "faq.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="unknown documents"):
        n09.load_faq(path)


def test_shipped_faq_retrieval_reaches_the_lesson_threshold(faq):
    """Does word TF-IDF on the shipped FAQ reach the notebook's recall@3 bar, and LSA rank a plain question's document first?"""
    index = n09.VectorIndex(faq.documents)
    assert n09.mean_recall(index, faq.queries, 3) >= 0.85
    lsa = n09.VectorIndex(faq.documents, dims=24)
    assert lsa.search("How do I cancel a job with scancel?", 1)[0].doc_id == "slurm-cancel"
    with pytest.raises(ValueError, match="dims"):
        n09.VectorIndex(faq.documents, dims=500)
    assert n09.recall_at_k(["a", "b", "c"], ["c", "d"], 2) == 0 and n09.recall_at_k(["a", "b", "c"], ["c", "d"], 3) == 0.5


def test_answer_quotes_and_cites_or_abstains(faq):
    """Does the answerer quote sentences with their source ids, and abstain on a question the FAQ cannot answer?"""
    index = n09.VectorIndex(faq.documents)
    ans = n09.answer(index, "How do I cancel my Slurm job?")
    assert ans.found and ans.citations[0] == "slurm-cancel" and "[slurm-cancel]" in ans.text
    assert all(e.sentence in faq.by_id(e.doc_id).text for e in ans.evidence)
    off = n09.answer(index, "What is the capital of France?")
    assert not off.found and off.citations == []
    with pytest.raises(ValueError):
        n09.answer(index, "   ")


def test_query_box_answers_each_new_question(faq):
    """Does the query box produce a new cited answer when the question or k changes?"""
    box = n09.rag_explorer(n09.VectorIndex(faq.documents), "How do I cancel my Slurm job?")
    question, k = box.children[0], box.children[1]
    assert box.result.citations == ["slurm-cancel"]
    question.value = "Where is my data stored?"
    assert "privacy-location" in box.result.citations
    k.value = 1
    assert len(box.result.hits) == 1


def test_retrieval_exercises():
    """Do the cosine, top-k and recall checks pass correct answers and name the dot-product, lowest-first and precision mistakes?"""
    assert outcome(n09.cosine_exercise, lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b))[0]
    passed, msg = outcome(n09.cosine_exercise, lambda a, b: a @ b)
    assert not passed and "dot product" in msg
    assert outcome(n09.top_k_exercise, lambda s, k: list(np.argsort(-np.asarray(s))[:k]))[0]
    passed, msg = outcome(n09.top_k_exercise, lambda s, k: list(np.argsort(s)[:k]))
    assert not passed and "LOWEST" in msg
    assert outcome(n09.recall_exercise, n09.recall_at_k)[0]
    passed, msg = outcome(n09.recall_exercise, lambda r, rel, k: len(set(r[:k]) & set(rel)) / k)
    assert not passed and "precision" in msg
