#!/usr/bin/env python3
"""Writes reference fixtures for troupe's inference tests from independent
implementations: llama.cpp (through llama-cpp-python) for the GGUF tokenizer and
greedy generation, and sentence-transformers for the BERT embedder.

Run with the reference venv that benches/reference/setup.sh builds:

    "${REFERENCE_VENV:-$HOME/.cache/troupe-reference-venv}"/bin/python \
        benches/reference/fixtures.py \
        --gguf ~/.cache/troupe-models/smollm2-135m-instruct-q4_1/model.gguf \
        --embedder ~/.cache/troupe-models/all-minilm-l6-v2

Writes llama_cpp_tokens.json, llama_cpp_greedy.json and
sentence_transformers_embeddings.json into --out. Deterministic: running it twice
gives the same files.
"""

import argparse
import ctypes
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

HOME = Path.home()
DEFAULT_GGUF = HOME / ".cache/troupe-models/smollm2-135m-instruct-q4_1/model.gguf"
DEFAULT_EMBEDDER = HOME / ".cache/troupe-models/all-minilm-l6-v2"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "inference/tests/fixtures"

GREEDY_STEPS = 48
EOS_ID = 2  # <|im_end|> in SmolLM2's vocabulary
N_THREADS = 2

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(question: str) -> str:
    """A one-turn chat rendered the way SmolLM2-Instruct's chat template renders it
    (default system message, generation prompt added)."""
    return (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"
        f"<|im_start|>user\n{question}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def long_paragraph() -> str:
    """About 2 KB of mixed text: prose, numbers, code, Unicode, whitespace."""
    parts = [
        "In 2024, the team shipped version 3.14.159 of the parser; it handled 1,234,567 requests/day "
        "(≈ 14.3 per second) with a p99 latency of 87 ms.",
        "Le café était fermé, alors nous sommes allés à la boulangerie — naïvement, sans réserver.",
        "東京の天気は晴れです。明日は雨が降るでしょう。",
        "Привет, мир! Как дела? Всё хорошо.",
        "مرحبا بالعالم، هذا اختبار.",
        "fn add(a: i32, b: i32) -> i32 { a + b }  // returns the sum",
        'if __name__ == "__main__":\n    main()\n',
        '{"key": [1, 2, 3], "nested": {"ok": true, "value": null}}',
        "cat log.txt | grep -E 'ERROR|WARN' | sort | uniq -c | sort -rn | head -n 10",
        "Emoji: 👋🏽 🚀 🇫🇷 👨‍👩‍👧‍👦 — and symbols: ©®™ ±×÷ ∑∫√∞ ← → ↑ ↓.",
        "Tabs\tand  double  spaces,\n\nblank lines,\r\nCRLF endings, and trailing space. ",
        "UPPER lower MiXeD CamelCaseWords snake_case_words kebab-case-words SCREAMING_CASE.",
        "URLs like https://example.com/path?query=1&x=y#frag and emails like a.b+c@example.org.",
        "Numbers: 0, 7, 42, 1000000, 3.14159, -2.5e-10, 0xFF, 1_000_000, 12345678901234567890.",
    ]
    text = ""
    i = 0
    while len(text.encode("utf-8")) < 2048:
        text += parts[i % len(parts)] + " "
        i += 1
    return text.rstrip(" ")


TOKEN_CASES = [
    # plain ASCII
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "I can't believe it's not butter! We'll see, they're here.",
    # whitespace
    " leading space",
    "trailing space ",
    "a  b",
    "a   b    c",
    "   x",
    "\n\n\n",
    "\t\tfoo",
    "line one\nline two\r\nline three",
    "  \n \t mixed \n\n  whitespace\t\t",
    " ",
    "",
    # digits and numbers
    "12345678",
    "3.14159",
    "The year 2024 had 366 days and 8784 hours; pi ≈ 3.14159265358979.",
    "1,000,000 vs 1000000 vs 1e6 vs 0x1F",
    # Unicode
    "naïve café",
    "日本語のテキスト",
    "👋🏽 hi",
    "Привет, как дела?",
    "مرحبا بالعالم",
    "e\u0301 a\u0300 n\u0303 (combining marks)",
    "한국어 텍스트와 हिन्दी पाठ",
    "🇫🇷👨‍👩‍👧‍👦✨",
    # code
    "fn main() {\n    let x: Vec<u32> = (0..10).map(|i| i * 2).collect();\n    println!(\"{:?}\", x);\n}",
    "def f(x):\n    if x > 0:\n        return x ** 2\n    return -x\n",
    '{"name": "troupe", "version": "0.1.0", "tags": ["a", "b"], "ok": true}',
    "ps aux | grep -v grep | awk '{print $2}' | xargs -r kill -9 2>/dev/null && echo done",
    # punctuation clusters
    "Wait... what?!?! (really) [yes] {no} <maybe> --- ***",
    "!!!???...,,,;;;:::'''\"\"\"```~~~@@@###$$$%%%^^^&&&",
    # special tokens written in the text
    chatml("What is the capital of France?"),
    "<|im_start|>user\nhi<|im_end|>\n<|endoftext|>",
    "not special: <|im_start without the closing bar",
    # long mixed paragraph
    long_paragraph(),
]

GREEDY_PROMPTS = [
    {"name": "chat_capital", "prompt": chatml("What is the capital of France?")},
    {"name": "chat_haiku", "prompt": chatml("Write a haiku about the sea.")},
    {"name": "chat_python", "prompt": chatml("How do I reverse a list in Python?")},
    {"name": "raw_story", "prompt": "Once upon a time, in a small village by the sea, there lived"},
    {"name": "raw_rust", "prompt": "// Returns the nth Fibonacci number.\nfn fibonacci(n: u64) -> u64 {\n"},
    {"name": "raw_list", "prompt": "The planets of the solar system, in order from the Sun, are:"},
]

EMBED_SENTENCES = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on stage.",
    "Someone performs music with a stringed instrument.",
    "How do I reset my password?",
    "Naïve café owners in Zürich serve crème brûlée.",
    "日本語の文章の埋め込みをテストします。",
    "Привет, мир! 👋🏽 Emoji and Cyrillic together.",
    "fn main() { println!(\"Hello, world!\"); }",
    "   Extra   spaces,\ttabs\nand NEWLINES — UPPER case too!   ",
    "a",
    # > 256 word pieces: exercises truncation at max_seq_length=256
    " ".join(
        [
            "Retrieval systems split long documents into passages, embed each passage,",
            "and compare the embeddings with the embedding of a query using cosine similarity.",
        ]
        * 20
    ),
    # long and mixed: truncation with Unicode and code in the tail
    long_paragraph(),
]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def llama_cpp_versions():
    import llama_cpp

    lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    out = {}
    for name in ("ggml_version", "ggml_commit"):
        fn = getattr(lib, name)
        fn.restype = ctypes.c_char_p
        out[name] = fn().decode()
    out["llama_cpp_python"] = llama_cpp.__version__
    out["system_info"] = llama_cpp.llama_print_system_info().decode().strip()
    return out


def llama_reference_string(v) -> str:
    commit = v["ggml_commit"].replace("-dirty", "")
    return f"llama.cpp {commit} (ggml {v['ggml_version']}) via llama-cpp-python {v['llama_cpp_python']}"


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def llama_fixtures(gguf: Path, out: Path) -> None:
    import llama_cpp
    from llama_cpp import Llama

    versions = llama_cpp_versions()
    reference = llama_reference_string(versions)
    model_sha = sha256_file(gguf)
    llm = Llama(
        model_path=str(gguf),
        n_ctx=1024,
        n_threads=N_THREADS,
        n_threads_batch=N_THREADS,
        logits_all=False,
        seed=0,
        verbose=False,
    )
    meta = {k: v for k, v in llm.metadata.items() if k.startswith("tokenizer.ggml.") and len(v) < 200}

    def tok(text: str):
        return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    cases = [{"text": t, "ids": tok(t)} for t in TOKEN_CASES]
    write_json(
        out / "llama_cpp_tokens.json",
        {
            "note": (
                "Produced by benches/reference/fixtures.py: Llama.tokenize(text.encode('utf-8'), "
                "add_bos=False, special=True), so special tokens written in the text (e.g. <|im_start|>) "
                "become their single ids. No BOS is added."
            ),
            "reference": reference,
            "model": gguf.name,
            "model_sha256": model_sha,
            "tokenizer_metadata": meta,
            "cases": cases,
        },
    )

    n_vocab = llm.n_vocab()
    ctx = llm._ctx.ctx

    def last_logits() -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(n_vocab,)).copy()

    greedy_cases = []
    for case in GREEDY_PROMPTS:
        prompt_ids = tok(case["prompt"])
        llm.reset()
        llm.eval(prompt_ids)
        ids, margins = [], []
        eos = False
        first = last_logits()
        # The ten best next tokens after the prompt with their logits: lets a test measure
        # how far apart the two implementations' scores are, not only their argmax.
        first_top = [[int(i), round(float(first[i]), 4)] for i in np.argsort(-first)[:10]]
        for _ in range(GREEDY_STEPS):
            logits = last_logits()
            best = int(np.argmax(logits))  # lowest index among equal maxima
            top = np.partition(logits, -2)[-2:]
            margins.append(round(float(top[1] - top[0]), 4))
            ids.append(best)
            if best == EOS_ID:
                eos = True
                break
            llm.eval([best])
        text = llm.detokenize(ids, special=False).decode("utf-8", errors="replace")
        greedy_cases.append(
            {
                "name": case["name"],
                "prompt": case["prompt"],
                "prompt_ids": prompt_ids,
                "ids": ids,
                "text": text,
                "eos": eos,
                "margins": margins,
                "first_step_top10": first_top,
            }
        )
        print(f"  {case['name']}: {len(ids)} tokens, eos={eos}, min margin {min(margins):.4f}: {text[:60]!r}")

    write_json(
        out / "llama_cpp_greedy.json",
        {
            "note": (
                "Produced by benches/reference/fixtures.py with llama.cpp on CPU "
                f"(n_ctx=1024, n_threads={N_THREADS}, default KV cache type, flash attention off as "
                "llama-cpp-python's Llama() sets it). For each prompt: prompt_ids = tokenize(prompt, "
                "add_bos=False, special=True); the prompt is evaluated in one batch, then each step takes "
                "the exact argmax of the last position's logits (no sampler, no repetition penalty) and "
                f"evaluates it. Stops after {GREEDY_STEPS} tokens or at EOS id {EOS_ID} (<|im_end|>), "
                "which is then the last id and eos=true. margins[i] = top logit - second logit at step i "
                "(a small margin means a near-tie that another implementation may legitimately break "
                "differently). text = detokenize(ids) without special tokens."
            ),
            "reference": reference,
            "system_info": versions["system_info"],
            "model": gguf.name,
            "model_sha256": model_sha,
            "max_new_tokens": GREEDY_STEPS,
            "eos_id": EOS_ID,
            "cases": greedy_cases,
        },
    )
    llm.close()


def embedding_fixtures(embedder: Path, out: Path) -> None:
    import sentence_transformers
    import tokenizers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6 moved the module classes
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models

    torch.manual_seed(0)
    transformer = models.Transformer(str(embedder), max_seq_length=256)
    pooling = models.Pooling(384, pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")
    model.eval()

    vectors = model.encode(
        EMBED_SENTENCES, batch_size=4, convert_to_numpy=True, normalize_embeddings=False
    )
    tokenizer = transformer.tokenizer
    cases = []
    for sentence, vec in zip(EMBED_SENTENCES, vectors):
        full = tokenizer(sentence, add_special_tokens=True, truncation=False)["input_ids"]
        used = tokenizer(sentence, add_special_tokens=True, truncation=True, max_length=256)["input_ids"]
        cases.append(
            {
                "text": sentence,
                "n_tokens_untruncated": len(full),
                "input_ids": used,
                "truncated": len(full) > len(used),
                "norm": round(float(np.linalg.norm(vec)), 7),
                "embedding": [float(f"{x:.7g}") for x in vec.tolist()],
            }
        )

    # Similarities a test can check with a looser tolerance than element-wise.
    sims = (vectors @ vectors.T).tolist()
    files = {p.name: sha256_file(p) for p in sorted(embedder.iterdir()) if p.is_file()}
    write_json(
        out / "sentence_transformers_embeddings.json",
        {
            "note": (
                "Produced by benches/reference/fixtures.py with sentence-transformers on CPU (float32), "
                "built from the local model directory without hub access: "
                "models.Transformer(DIR, max_seq_length=256), models.Pooling(384, pooling_mode='mean'), "
                "models.Normalize(). input_ids are the [CLS] ... [SEP] ids actually embedded (truncated to "
                "256). Values rounded to 7 significant digits. cosine[i][j] is the dot product of the "
                "unit vectors of cases i and j."
            ),
            "reference": (
                f"sentence-transformers {sentence_transformers.__version__}, transformers "
                f"{transformers.__version__}, tokenizers {tokenizers.__version__}, torch {torch.__version__} (CPU)"
            ),
            "model": embedder.name,
            "model_files_sha256": files,
            "dimensions": int(vectors.shape[1]),
            "max_seq_length": 256,
            "cases": cases,
            "cosine": [[round(x, 6) for x in row] for row in sims],
        },
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", type=Path, default=DEFAULT_GGUF)
    ap.add_argument("--embedder", type=Path, default=DEFAULT_EMBEDDER)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--skip-llama", action="store_true")
    ap.add_argument("--skip-embeddings", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"python {platform.python_version()} on {platform.machine()}", file=sys.stderr)
    if not args.skip_llama:
        llama_fixtures(args.gguf.expanduser(), args.out)
    if not args.skip_embeddings:
        embedding_fixtures(args.embedder.expanduser(), args.out)


if __name__ == "__main__":
    main()
