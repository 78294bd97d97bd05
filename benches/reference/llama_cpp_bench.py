#!/usr/bin/env python3
"""Reference CPU benchmark of llama.cpp (through llama-cpp-python's low-level API)
on the same GGUF and thread count as troupe's own benchmark.

    "${REFERENCE_VENV:-$HOME/.cache/troupe-reference-venv}"/bin/python \
        benches/reference/llama_cpp_bench.py --threads 2 --out /tmp/llama_cpp_bench.json

Measures, each as the median of --repeat runs after one warm-up:
- prefill tokens/s: a --prompt-tokens prompt evaluated in one llama_decode call;
- time to first token: that prefill plus taking the argmax of its logits;
- single-stream decode tokens/s: --decode-tokens greedy steps, one token per llama_decode;
- aggregate decode tokens/s at N concurrent streams (each of --streams): one context
  with n_seq_max=N, each stream its own seq_id and its own prompt (prefilled one
  stream at a time, not timed), then --decode-tokens steps in which one batch holds
  one new token per stream; aggregate = N * steps / elapsed. Sampling is an exact
  argmax over the logits (numpy), included in the timings. Streams do not stop at
  EOS: every stream decodes exactly --decode-tokens tokens;
- peak RSS (VmHWM) of this process, after the single-stream runs and
  at the end (the latter includes the N-stream contexts' KV caches).
"""

import argparse
import ctypes
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import llama_cpp as L

DEFAULT_GGUF = Path.home() / ".cache/troupe-models/smollm2-135m-instruct-q4_1/model.gguf"

BASE_TEXT = (
    "The history of computing is a story of abstraction. Early machines were programmed by "
    "rewiring panels and flipping switches; later, stored programs let the same hardware run "
    "many different tasks. Assembly languages gave names to instructions, and compilers turned "
    "structured languages into machine code. Operating systems shared one processor among many "
    "programs, and networks joined many computers into one system. Each layer hid the details "
    "of the one below it, so that people could think about larger problems. Today a developer "
    "can describe a service in a few lines of configuration and have it running on machines "
    "they will never see, in data centres on the other side of the world. "
)

FLASH = {
    "auto": L.LLAMA_FLASH_ATTN_TYPE_AUTO,
    "on": L.LLAMA_FLASH_ATTN_TYPE_ENABLED,
    "off": L.LLAMA_FLASH_ATTN_TYPE_DISABLED,
}


def rss_peak_mb() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so when `troupe bench`
    # starts this script the parent's peak would be reported as llama.cpp's.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def versions():
    lib = ctypes.CDLL(str(Path(L.__file__).parent / "lib" / "libggml-base.so"))
    out = {}
    for name in ("ggml_version", "ggml_commit"):
        fn = getattr(lib, name)
        fn.restype = ctypes.c_char_p
        out[name] = fn().decode()
    return out


def tokenize(vocab, text: str):
    data = text.encode("utf-8")
    cap = len(data) + 16
    buf = (L.llama_token * cap)()
    n = L.llama_tokenize(vocab, data, len(data), buf, cap, False, False)
    if n < 0:
        raise RuntimeError(f"tokenize failed ({n})")
    return list(buf[:n])


def prompt_tokens(vocab, n: int):
    base = tokenize(vocab, BASE_TEXT)
    ids = []
    while len(ids) < n:
        ids.extend(base)
    return ids[:n]


class Batch:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self.b = L.llama_batch_init(capacity, 0, 1)

    def clear(self):
        self.b.n_tokens = 0

    def add(self, token: int, pos: int, seq: int, logits: bool):
        i = self.b.n_tokens
        assert i < self.capacity
        self.b.token[i] = token
        self.b.pos[i] = pos
        self.b.n_seq_id[i] = 1
        self.b.seq_id[i][0] = seq
        self.b.logits[i] = logits
        self.b.n_tokens = i + 1

    def free(self):
        L.llama_batch_free(self.b)


class Context:
    def __init__(self, model, n_vocab, *, n_ctx, n_batch, n_seq_max, threads, flash):
        p = L.llama_context_default_params()
        p.n_ctx = n_ctx
        p.n_batch = n_batch
        p.n_ubatch = n_batch
        p.n_seq_max = n_seq_max
        p.n_threads = threads
        p.n_threads_batch = threads
        p.flash_attn_type = FLASH[flash]
        p.no_perf = True
        self.params = {
            "n_ctx": n_ctx,
            "n_batch": n_batch,
            "n_ubatch": n_batch,
            "n_seq_max": n_seq_max,
            "kv_unified": bool(p.kv_unified),
            "flash_attn": flash,
            "type_k": int(p.type_k),
            "type_v": int(p.type_v),
        }
        self.ctx = L.llama_init_from_model(model, p)
        if not self.ctx:
            raise RuntimeError(f"llama_init_from_model failed for {self.params}")
        self.params["n_ctx_seq"] = int(L.llama_n_ctx_seq(self.ctx))
        self.mem = L.llama_get_memory(self.ctx)
        self.n_vocab = n_vocab

    def reset(self):
        L.llama_memory_clear(self.mem, True)

    def decode(self, batch: Batch):
        rc = L.llama_decode(self.ctx, batch.b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        L.llama_synchronize(self.ctx)

    def argmax_outputs(self, n_outputs: int) -> np.ndarray:
        """Argmax of each of the last decode's n_outputs logit rows (in batch order)."""
        ptr = L.llama_get_logits(self.ctx)
        logits = np.ctypeslib.as_array(ptr, shape=(n_outputs, self.n_vocab))
        return logits.argmax(axis=1)

    def free(self):
        L.llama_free(self.ctx)


def single_stream(model, n_vocab, prompt, args):
    P, D = len(prompt), args.decode_tokens
    ctx = Context(model, n_vocab, n_ctx=P + D + 64, n_batch=max(P, 64), n_seq_max=1,
                  threads=args.threads, flash=args.flash_attn)
    batch = Batch(max(P, 64))

    def run(P_run, D_run):
        ctx.reset()
        batch.clear()
        for i, t in enumerate(prompt[:P_run]):
            batch.add(t, i, 0, i == P_run - 1)
        t0 = time.perf_counter()
        ctx.decode(batch)
        t1 = time.perf_counter()
        tok = int(ctx.argmax_outputs(1)[0])
        t2 = time.perf_counter()
        generated = [tok]
        for step in range(D_run):
            batch.clear()
            batch.add(tok, P_run + step, 0, True)
            ctx.decode(batch)
            tok = int(ctx.argmax_outputs(1)[0])
            generated.append(tok)
        t3 = time.perf_counter()
        return {"prefill_s": t1 - t0, "ttft_s": t2 - t0, "decode_s": t3 - t2, "tokens": generated}

    run(16, 4)  # warm-up
    runs = [run(P, D) for _ in range(args.repeat)]
    ctx.free()
    batch.free()
    prefill = [P / r["prefill_s"] for r in runs]
    decode = [D / r["decode_s"] for r in runs]
    ttft = [r["ttft_s"] * 1000 for r in runs]
    return {
        "context": ctx.params,
        "prefill_tokens_per_s": statistics.median(prefill),
        "decode_tokens_per_s": statistics.median(decode),
        "ttft_ms": statistics.median(ttft),
        "runs": {
            "prefill_tokens_per_s": [round(x, 2) for x in prefill],
            "decode_tokens_per_s": [round(x, 2) for x in decode],
            "ttft_ms": [round(x, 3) for x in ttft],
        },
        "first_tokens": runs[0]["tokens"][:16],
    }


def multi_stream(model, n_vocab, prompt, n_streams, args):
    P, D = len(prompt), args.decode_tokens
    n_ctx = n_streams * (P + D + 64)
    # each stream gets its own deterministic prompt of the same length
    prompts = [prompt[(7 * s) % P:] + prompt[: (7 * s) % P] for s in range(n_streams)]
    ctx = Context(model, n_vocab, n_ctx=n_ctx, n_batch=max(P, n_streams, 64),
                  n_seq_max=n_streams, threads=args.threads, flash=args.flash_attn)
    batch = Batch(max(P, n_streams, 64))

    def run(P_run, D_run):
        ctx.reset()
        current = []
        for s in range(n_streams):
            batch.clear()
            for i, t in enumerate(prompts[s][:P_run]):
                batch.add(t, i, s, i == P_run - 1)
            ctx.decode(batch)
            current.append(int(ctx.argmax_outputs(1)[0]))
        t0 = time.perf_counter()
        for step in range(D_run):
            batch.clear()
            for s in range(n_streams):
                batch.add(current[s], P_run + step, s, True)
            ctx.decode(batch)
            current = ctx.argmax_outputs(n_streams).tolist()
        return time.perf_counter() - t0

    run(16, 2)  # warm-up
    times = [run(P, D) for _ in range(args.repeat)]
    ctx.free()
    batch.free()
    agg = [n_streams * D / t for t in times]
    return statistics.median(agg), [round(x, 2) for x in agg], ctx.params


def shared_prefix(model, vocab, n_vocab, args):
    """The agent workload, as troupe's benchmark runs it: --shared-streams requests
    arriving together, each a shared system prompt of --shared-prefix-tokens and its own
    question of --question-tokens, sampled at temperature 0.7 and top-p 0.9 (llama.cpp's
    sampler chain) for up to --shared-output-tokens, stopping at end of generation. Each
    step is filled as a server fills it: one token for every decoding stream first, then
    prompt tokens in arrival order up to --step-tokens. No prompt is shared between
    sequences: each stream prefills its whole prompt."""
    S, D = args.shared_streams, args.shared_output_tokens
    system = prompt_tokens(vocab, args.shared_prefix_tokens)
    prompts = []
    for s in range(S):
        question = tokenize(vocab, f"Question {s}: what did build {s} change, and why? ")
        prompts.append(system + (question * args.question_tokens)[: args.question_tokens])
    room = args.step_tokens
    ctx = Context(model, n_vocab, n_ctx=sum(len(p) + D + 8 for p in prompts), n_batch=room,
                  n_seq_max=S, threads=args.threads, flash=args.flash_attn)
    batch = Batch(room)
    samplers = []
    for s in range(S):
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_p(0.9, 1))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_temp(0.7))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(s))
        samplers.append(chain)
    fed = [0] * S          # prompt tokens fed so far
    last = [None] * S      # the token each decoding stream feeds next
    generated = [0] * S
    first_token_ms = [None] * S
    done = [False] * S
    t0 = time.perf_counter()
    while not all(done):
        batch.clear()
        rows = []  # (stream, batch index) of each row that asks for logits
        for s in range(S):
            if not done[s] and last[s] is not None:
                rows.append((s, batch.b.n_tokens))
                batch.add(last[s], len(prompts[s]) + generated[s] - 1, s, True)
        for s in range(S):
            while not done[s] and fed[s] < len(prompts[s]) and batch.b.n_tokens < room:
                end = fed[s] == len(prompts[s]) - 1
                if end:
                    rows.append((s, batch.b.n_tokens))
                batch.add(prompts[s][fed[s]], fed[s], s, end)
                fed[s] += 1
        ctx.decode(batch)
        for s, index in rows:
            token = L.llama_sampler_sample(samplers[s], ctx.ctx, index)
            generated[s] += 1
            if first_token_ms[s] is None:
                first_token_ms[s] = (time.perf_counter() - t0) * 1000
            if L.llama_vocab_is_eog(vocab, token) or generated[s] >= D:
                done[s] = True
            last[s] = token
    elapsed = time.perf_counter() - t0
    for chain in samplers:
        L.llama_sampler_free(chain)
    ctx.free()
    batch.free()
    ordered = sorted(first_token_ms)
    rank = lambda p: ordered[max(0, -(-int(p * 100) * len(ordered) // 100) - 1)]
    return {
        "streams": S,
        "prefix_tokens": args.shared_prefix_tokens,
        "question_tokens": args.question_tokens,
        "max_output_tokens": D,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_step_tokens": room,
        "time_to_first_token_ms_p50": round(rank(0.5), 1),
        "time_to_first_token_ms_p95": round(rank(0.95), 1),
        "generated_tokens": sum(generated),
        "aggregate_tokens_per_s": round(sum(generated) / elapsed, 2),
        "context": ctx.params,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", type=Path, default=DEFAULT_GGUF)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--streams", default="1,4,16")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--flash-attn", choices=sorted(FLASH), default="auto",
                    help="llama.cpp flash attention setting (default: llama.cpp's own default, auto)")
    ap.add_argument("--shared-streams", type=int, default=16)
    ap.add_argument("--shared-prefix-tokens", type=int, default=1500)
    ap.add_argument("--question-tokens", type=int, default=100)
    ap.add_argument("--shared-output-tokens", type=int, default=128)
    ap.add_argument("--step-tokens", type=int, default=512)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--verbose", action="store_true", help="show llama.cpp's own log")
    args = ap.parse_args()
    load_at_start = os.getloadavg()[0]
    if not args.verbose:
        from llama_cpp._logger import set_verbose

        set_verbose(False)
    streams = [int(s) for s in args.streams.split(",") if s.strip()]

    L.llama_backend_init()
    mparams = L.llama_model_default_params()
    mparams.n_gpu_layers = 0
    t0 = time.perf_counter()
    model = L.llama_model_load_from_file(str(args.gguf.expanduser()).encode(), mparams)
    load_ms = (time.perf_counter() - t0) * 1000
    if not model:
        sys.exit(f"cannot load {args.gguf}")
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    prompt = prompt_tokens(vocab, args.prompt_tokens)

    single = single_stream(model, n_vocab, prompt, args)
    rss_single = rss_peak_mb()
    aggregate, aggregate_runs, stream_contexts = {}, {}, {}
    for n in streams:
        med, runs, params = multi_stream(model, n_vocab, prompt, n, args)
        aggregate[str(n)] = round(med, 2)
        aggregate_runs[str(n)] = runs
        stream_contexts[str(n)] = params
        print(f"  {n:>3} streams: {med:8.2f} tok/s aggregate", file=sys.stderr)
    rss_all = rss_peak_mb()
    shared = shared_prefix(model, vocab, n_vocab, args)
    print(f"  shared prefix: first token p50 {shared['time_to_first_token_ms_p50']} ms, "
          f"{shared['aggregate_tokens_per_s']} tok/s aggregate", file=sys.stderr)

    v = versions()
    result = {
        "implementation": "llama.cpp",
        "version": f"llama.cpp {v['ggml_commit'].replace('-dirty', '')} (ggml {v['ggml_version']}) "
                   f"via llama-cpp-python {L.__version__}",
        "model": str(args.gguf),
        "threads": args.threads,
        "prompt_tokens": args.prompt_tokens,
        "decode_tokens": args.decode_tokens,
        "repeat": args.repeat,
        "system_info": L.llama_print_system_info().decode().strip(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, 1-min load average {load_at_start:.2f} at start, {os.getloadavg()[0]:.2f} at end",
        "model_load_ms": round(load_ms, 1),
        "prefill_tokens_per_s": round(single["prefill_tokens_per_s"], 2),
        "decode_tokens_per_s": round(single["decode_tokens_per_s"], 2),
        "ttft_ms": round(single["ttft_ms"], 3),
        "peak_rss_mb": round(rss_single, 1),
        "peak_rss_mb_after_streams": round(rss_all, 1),
        "aggregate_decode_tokens_per_s": aggregate,
        "shared_prefix": shared,
        "runs": {"single_stream": single["runs"], "aggregate_decode_tokens_per_s": aggregate_runs},
        "contexts": {"single_stream": single["context"], "streams": stream_contexts},
        "greedy_first_tokens": single["first_tokens"],
        "note": (
            "Medians of `repeat` runs after a warm-up. Prompt: a fixed English text tokenised "
            "without BOS, repeated and cut to prompt_tokens. peak_rss_mb is VmHWM after the "
            "single-stream runs (model mmapped + one context); peak_rss_mb_after_streams includes the "
            "multi-stream contexts. Timings include the numpy argmax over the logits."
        ),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    L.llama_model_free(model)


if __name__ == "__main__":
    main()
