"""llama.cpp's C API through ctypes, on the prebuilt shared libraries of the npm package
node-llama-cpp (3.22.1 ships llama.cpp release v0.5.0 as libllama.v0.5.0.so); nothing is compiled.

The struct layouts below follow `include/llama.h` and `ggml/include/ggml.h` of that release (the
package carries the release's sources as `llama/gitRelease.bundle`); `check_layouts` compares the
library's own default parameters with the header's documented defaults, so a layout that does not
match the library fails loudly instead of passing garbage.

Used by quantize_peer.py for three things:
  * `quantize`: llama_model_quantize (llama.cpp's own quantiser, optionally with an importance matrix),
  * `imatrix`: llama.cpp's importance matrix computed the way its `llama-imatrix` tool does (mean of
    the squared inputs of every `blk.*` matrix multiplication, batches of >= 16 tokens), through the
    public evaluation callback `cb_eval`,
  * `detokenize`: token ids back to text.
"""

import ctypes as C
import glob
import os

import numpy as np

GGML_MAX_DIMS = 4
GGML_MAX_SRC = 10
GGML_MAX_OP_PARAMS = 64
GGML_MAX_NAME = 64
GGML_TYPE_F32 = 0
GGML_TYPE_COUNT = 43

# enum llama_ftype (llama.h, v0.5.0)
FTYPES = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10,
    "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16,
    "Q5_K_M": 17, "Q6_K": 18, "IQ2_XXS": 19, "IQ2_XS": 20, "Q2_K_S": 21, "IQ3_XS": 22,
    "IQ3_XXS": 23, "IQ1_S": 24, "IQ4_NL": 25, "IQ3_S": 26, "IQ3_M": 27, "IQ2_S": 28, "IQ2_M": 29,
    "IQ4_XS": 30, "IQ1_M": 31,
}


class ImatrixData(C.Structure):
    _fields_ = [("name", C.c_char_p), ("data", C.POINTER(C.c_float)), ("size", C.c_size_t)]


class QuantizeParams(C.Structure):
    _fields_ = [
        ("nthread", C.c_int32), ("ftype", C.c_int), ("output_tensor_type", C.c_int),
        ("token_embedding_type", C.c_int), ("allow_requantize", C.c_bool),
        ("quantize_output_tensor", C.c_bool), ("only_copy", C.c_bool), ("pure", C.c_bool),
        ("keep_split", C.c_bool), ("dry_run", C.c_bool), ("imatrix", C.POINTER(ImatrixData)),
        ("kv_overrides", C.c_void_p), ("tt_overrides", C.c_void_p), ("prune_layers", C.c_void_p),
        ("max_buf_size", C.c_size_t),
    ]


class ModelParams(C.Structure):
    _fields_ = [
        ("devices", C.c_void_p), ("tensor_buft_overrides", C.c_void_p), ("n_gpu_layers", C.c_int32),
        ("split_mode", C.c_int), ("load_mode", C.c_int), ("lazy_mode", C.c_int), ("main_gpu", C.c_int32),
        ("tensor_split", C.c_void_p), ("progress_callback", C.c_void_p),
        ("progress_callback_user_data", C.c_void_p), ("kv_overrides", C.c_void_p),
        ("vocab_only", C.c_bool), ("check_tensors", C.c_bool), ("use_extra_bufts", C.c_bool),
        ("no_host", C.c_bool), ("no_alloc", C.c_bool), ("load_mtp", C.c_bool),
    ]


class GgmlTensor(C.Structure):
    pass


GgmlTensor._fields_ = [
    ("type", C.c_int), ("buffer", C.c_void_p), ("ne", C.c_int64 * GGML_MAX_DIMS),
    ("nb", C.c_size_t * GGML_MAX_DIMS), ("op", C.c_int),
    ("op_params", C.c_int32 * (GGML_MAX_OP_PARAMS // 4)), ("flags", C.c_int32),
    ("src", C.POINTER(GgmlTensor) * GGML_MAX_SRC), ("view_src", C.POINTER(GgmlTensor)),
    ("view_offs", C.c_size_t), ("data", C.c_void_p), ("name", C.c_char * GGML_MAX_NAME),
    ("extra", C.c_void_p), ("padding", C.c_char * 8),
]

EVAL_CB = C.CFUNCTYPE(C.c_bool, C.POINTER(GgmlTensor), C.c_bool, C.c_void_p)
LOG_CB = C.CFUNCTYPE(None, C.c_int, C.c_char_p, C.c_void_p)


class ContextParams(C.Structure):
    _fields_ = [
        ("n_ctx", C.c_uint32), ("n_batch", C.c_uint32), ("n_ubatch", C.c_uint32),
        ("n_seq_max", C.c_uint32), ("n_rs_seq", C.c_uint32), ("n_outputs_max", C.c_uint32),
        ("n_outputs_max_per_seq", C.c_uint32), ("n_threads", C.c_int32),
        ("n_threads_batch", C.c_int32), ("ctx_type", C.c_int), ("rope_scaling_type", C.c_int),
        ("pooling_type", C.c_int), ("attention_type", C.c_int), ("flash_attn_type", C.c_int),
        ("rope_freq_base", C.c_float), ("rope_freq_scale", C.c_float),
        ("yarn_ext_factor", C.c_float), ("yarn_attn_factor", C.c_float),
        ("yarn_beta_fast", C.c_float), ("yarn_beta_slow", C.c_float),
        ("yarn_orig_ctx", C.c_uint32), ("defrag_thold", C.c_float), ("cb_eval", EVAL_CB),
        ("cb_eval_user_data", C.c_void_p), ("type_k", C.c_int), ("type_v", C.c_int),
        ("abort_callback", C.c_void_p), ("abort_callback_data", C.c_void_p),
        ("embeddings", C.c_bool), ("offload_kqv", C.c_bool), ("no_perf", C.c_bool),
        ("op_offload", C.c_bool), ("swa_full", C.c_bool), ("kv_unified", C.c_bool),
        ("samplers", C.c_void_p), ("n_samplers", C.c_size_t), ("ctx_other", C.c_void_p),
    ]


class Batch(C.Structure):
    _fields_ = [
        ("n_tokens", C.c_int32), ("token", C.POINTER(C.c_int32)), ("embd", C.POINTER(C.c_float)),
        ("pos", C.POINTER(C.c_int32)), ("n_seq_id", C.POINTER(C.c_int32)),
        ("seq_id", C.POINTER(C.POINTER(C.c_int32))), ("logits", C.POINTER(C.c_int8)),
    ]


def bins_dir(node_dir):
    """The directory of node-llama-cpp's prebuilt CPU libraries under an npm prefix."""
    hits = glob.glob(os.path.join(node_dir, "node_modules", "@node-llama-cpp", "linux-x64", "bins",
                                  "linux-x64", "libllama.*.so"))
    if not hits:
        raise FileNotFoundError(f"no libllama.*.so of @node-llama-cpp/linux-x64 under {node_dir}")
    return os.path.dirname(hits[0])


@LOG_CB
def _quiet_log(level, text, user):  # noqa: ARG001 (llama.cpp's log lines are dropped)
    return None


class LlamaCpp:
    def __init__(self, libdir, verbose=False):
        mode = C.RTLD_GLOBAL
        self.base = C.CDLL(os.path.join(libdir, "libggml-base.so"), mode=mode)
        self.ggml = C.CDLL(glob.glob(os.path.join(libdir, "libggml.v*.so"))[0], mode=mode)
        self.lib = C.CDLL(glob.glob(os.path.join(libdir, "libllama.v*.so"))[0], mode=mode)
        L = self.lib
        if not verbose:
            L.llama_log_set.argtypes = [LOG_CB, C.c_void_p]
            L.llama_log_set(_quiet_log, None)
        # The CPU backend is a loadable module (one build per instruction set).
        self.ggml.ggml_backend_load_all_from_path.argtypes = [C.c_char_p]
        self.ggml.ggml_backend_load_all_from_path(libdir.encode())
        L.llama_backend_init()
        L.llama_model_quantize_default_params.restype = QuantizeParams
        L.llama_model_quantize.argtypes = [C.c_char_p, C.c_char_p, C.POINTER(QuantizeParams)]
        L.llama_model_quantize.restype = C.c_uint32
        L.llama_model_default_params.restype = ModelParams
        L.llama_context_default_params.restype = ContextParams
        L.llama_model_load_from_file.argtypes = [C.c_char_p, ModelParams]
        L.llama_model_load_from_file.restype = C.c_void_p
        L.llama_init_from_model.argtypes = [C.c_void_p, ContextParams]
        L.llama_init_from_model.restype = C.c_void_p
        L.llama_model_get_vocab.argtypes = [C.c_void_p]
        L.llama_model_get_vocab.restype = C.c_void_p
        L.llama_get_memory.argtypes = [C.c_void_p]
        L.llama_get_memory.restype = C.c_void_p
        L.llama_memory_clear.argtypes = [C.c_void_p, C.c_bool]
        L.llama_batch_get_one.argtypes = [C.POINTER(C.c_int32), C.c_int32]
        L.llama_batch_get_one.restype = Batch
        L.llama_decode.argtypes = [C.c_void_p, Batch]
        L.llama_decode.restype = C.c_int32
        L.llama_free.argtypes = [C.c_void_p]
        L.llama_model_free.argtypes = [C.c_void_p]
        L.llama_detokenize.argtypes = [C.c_void_p, C.POINTER(C.c_int32), C.c_int32, C.c_char_p,
                                       C.c_int32, C.c_bool, C.c_bool]
        L.llama_detokenize.restype = C.c_int32
        L.llama_get_logits.argtypes = [C.c_void_p]
        L.llama_get_logits.restype = C.POINTER(C.c_float)
        L.llama_vocab_n_tokens.argtypes = [C.c_void_p]
        L.llama_vocab_n_tokens.restype = C.c_int32
        L.llama_tokenize.argtypes = [C.c_void_p, C.c_char_p, C.c_int32, C.POINTER(C.c_int32), C.c_int32,
                                     C.c_bool, C.c_bool]
        L.llama_tokenize.restype = C.c_int32
        self.base.ggml_op_name.argtypes = [C.c_int]
        self.base.ggml_op_name.restype = C.c_char_p
        self.base.ggml_blck_size.argtypes = [C.c_int]
        self.base.ggml_blck_size.restype = C.c_int64
        self.base.ggml_type_size.argtypes = [C.c_int]
        self.base.ggml_type_size.restype = C.c_size_t
        self.base.ggml_type_name.argtypes = [C.c_int]
        self.base.ggml_type_name.restype = C.c_char_p
        self.check_layouts()

    def type_info(self, t):
        """(name, elements per block, bytes per block) of a ggml type id."""
        return (self.base.ggml_type_name(t).decode(), self.base.ggml_blck_size(t),
                self.base.ggml_type_size(t))

    def check_layouts(self):
        """The library's defaults read through our structs must be the header's defaults."""
        q = self.lib.llama_model_quantize_default_params()
        assert (q.nthread, q.ftype, q.output_tensor_type, q.token_embedding_type) == (
            0, FTYPES["Q8_0"], GGML_TYPE_COUNT, GGML_TYPE_COUNT), "quantize params layout"
        assert q.quantize_output_tensor and not (q.allow_requantize or q.only_copy or q.pure or q.keep_split
                                                 or q.dry_run), "quantize params layout (flags)"
        assert not (q.imatrix or q.kv_overrides or q.tt_overrides or q.prune_layers), \
            "quantize params layout (pointers)"
        assert q.max_buf_size == 8 << 30, "quantize params layout (max_buf_size)"
        c = self.lib.llama_context_default_params()
        assert (c.n_ctx, c.n_batch, c.n_ubatch, c.n_seq_max, c.n_rs_seq, c.n_outputs_max,
                c.n_outputs_max_per_seq) == (512, 2048, 512, 1, 0, 0, 1), "context layout"
        assert (c.flash_attn_type, c.yarn_ext_factor, c.yarn_beta_slow, c.defrag_thold) == (-1, -1.0, -1.0, -1.0), \
            "context layout (floats)"
        assert (c.type_k, c.type_v) == (1, 1), "context layout (cache types)"
        assert (c.embeddings, c.offload_kqv, c.no_perf, c.op_offload, c.swa_full, c.kv_unified) == (
            False, True, True, True, True, False), "context layout (flags)"
        assert not (c.samplers or c.n_samplers or c.ctx_other), "context layout (tail)"
        m = self.lib.llama_model_default_params()
        assert (m.n_gpu_layers, m.split_mode, m.load_mode, m.lazy_mode, m.main_gpu) == (-1, 1, -1, 1, 0), \
            "model params layout"
        assert (m.vocab_only, m.check_tensors, m.use_extra_bufts, m.no_host, m.no_alloc, m.load_mtp) == (
            False, False, True, False, False, False), "model params layout (flags)"

    def quantize(self, inp, out, ftype, nthread, imatrix=None, token_embedding_type=None, pure=False):
        """llama_model_quantize(inp -> out) at `ftype` (a name of FTYPES), with an importance
        matrix {tensor name: float32 array} if given; `token_embedding_type` (a ggml type name such
        as "q4_0") and `pure` are llama-quantize's --token-embedding-type and --pure."""
        p = self.lib.llama_model_quantize_default_params()
        p.nthread = nthread
        p.ftype = FTYPES[ftype]
        p.pure = pure
        if token_embedding_type:
            ids = [t for t in range(GGML_TYPE_COUNT) if self.base.ggml_type_name(t)
                   and self.base.ggml_type_name(t).decode() == token_embedding_type.lower()]
            if not ids:
                raise ValueError(f"unknown ggml type {token_embedding_type}")
            p.token_embedding_type = ids[0]
        keep = []
        if imatrix:
            arr = (ImatrixData * (len(imatrix) + 1))()
            for i, (name, v) in enumerate(sorted(imatrix.items())):
                v = np.ascontiguousarray(v, dtype=np.float32)
                keep.append(v)
                arr[i].name = name.encode()
                arr[i].data = v.ctypes.data_as(C.POINTER(C.c_float))
                arr[i].size = v.size
            arr[len(imatrix)].name = None
            p.imatrix = C.cast(arr, C.POINTER(ImatrixData))
            keep.append(arr)
        rc = self.lib.llama_model_quantize(inp.encode(), out.encode(), C.byref(p))
        if rc != 0:
            raise RuntimeError(f"llama_model_quantize({inp} -> {out}, {ftype}) returned {rc}")

    def _load(self, path, n_ctx, nthread, cb=None):
        mp = self.lib.llama_model_default_params()
        mp.n_gpu_layers = 0
        model = self.lib.llama_model_load_from_file(path.encode(), mp)
        if not model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        cp = self.lib.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = n_ctx
        cp.n_ubatch = n_ctx
        cp.n_threads = nthread
        cp.n_threads_batch = nthread
        if cb is not None:
            cp.cb_eval = cb
        ctx = self.lib.llama_init_from_model(model, cp)
        if not ctx:
            raise RuntimeError(f"llama.cpp could not create a context for {path}")
        return model, ctx

    def _decode_windows(self, ctx, ids, n_ctx, min_len):
        """Decodes `ids` in disjoint windows of n_ctx tokens on a cleared cache, every position
        outputting logits; yields each window after its decode. Stops at a window shorter than
        min_len."""
        mem = self.lib.llama_get_memory(ctx)
        for begin in range(0, len(ids), n_ctx):
            win = ids[begin:begin + n_ctx]
            if len(win) < min_len:
                break
            self.lib.llama_memory_clear(mem, True)
            arr = (C.c_int32 * len(win))(*win)
            batch = self.lib.llama_batch_get_one(arr, len(win))
            outs = (C.c_int8 * len(win))(*([1] * len(win)))
            batch.logits = C.cast(outs, C.POINTER(C.c_int8))
            rc = self.lib.llama_decode(ctx, batch)
            if rc != 0:
                raise RuntimeError(f"llama_decode returned {rc}")
            yield win

    def imatrix(self, path, ids, n_ctx, nthread):
        """llama.cpp's importance matrix of the model at `path` over `ids`, in disjoint windows of
        n_ctx tokens: for each `blk.*` weight, the mean over tokens of the squared input of its
        matrix multiplication (what llama-imatrix accumulates, and llama-quantize divides by the
        count). Returns ({name: float32 array}, tokens seen per name)."""
        sums, counts = {}, {}

        def collect(tp, ask, _user):
            t = tp.contents
            if ask:
                if self.base.ggml_op_name(t.op) != b"MUL_MAT":
                    return False
                src0, src1 = t.src[0].contents, t.src[1].contents
                return (src1.ne[1] >= 16 and src1.type == GGML_TYPE_F32
                        and src0.name.startswith(b"blk."))
            src0, src1 = t.src[0].contents, t.src[1].contents
            name = src0.name.decode()
            ne0 = src1.ne[0]
            assert src1.nb[0] == 4, f"{name}: non-contiguous input rows"
            rows = []
            for i3 in range(src1.ne[3]):
                for i2 in range(src1.ne[2]):
                    base = src1.data + i2 * src1.nb[2] + i3 * src1.nb[3]
                    buf = (C.c_char * (src1.nb[1] * (src1.ne[1] - 1) + ne0 * 4)).from_address(base)
                    a = np.lib.stride_tricks.as_strided(
                        np.frombuffer(buf, dtype=np.float32), shape=(src1.ne[1], ne0),
                        strides=(src1.nb[1], 4))
                    rows.append((a.astype(np.float64) ** 2).sum(axis=0))
            acc = np.sum(rows, axis=0)
            if name in sums:
                sums[name] += acc
            else:
                sums[name] = acc
            counts[name] = counts.get(name, 0) + src1.ne[1] * src1.ne[2] * src1.ne[3]
            return True

        cb = EVAL_CB(collect)
        model, ctx = self._load(path, n_ctx, nthread, cb)
        try:
            # Every position outputs logits, as llama-imatrix asks (it scores perplexity):
            # otherwise the last layer's feed-forward sees only the final token.
            for _ in self._decode_windows(ctx, ids, n_ctx, 16):
                pass
        finally:
            self.lib.llama_free(ctx)
            self.lib.llama_model_free(model)
        return {k: (v / counts[k]).astype(np.float32) for k, v in sums.items()}, counts

    def perplexity(self, path, ids, n_ctx, nthread):
        """Perplexity of the model at `path` on `ids` with the windowing of claimlab's runtime:
        disjoint windows of n_ctx tokens, each window's first token unscored, the others scored by
        -ln p(x_t | window prefix) from llama.cpp's logits. Returns (ppl, mean nll, scored)."""
        model, ctx = self._load(path, n_ctx, nthread)
        try:
            n_vocab = self.lib.llama_vocab_n_tokens(self.lib.llama_model_get_vocab(model))
            total, scored = 0.0, 0
            for win in self._decode_windows(ctx, ids, n_ctx, 2):
                ptr = self.lib.llama_get_logits(ctx)
                logits = np.ctypeslib.as_array(ptr, shape=(len(win), n_vocab)).astype(np.float64)
                z = logits[:-1]
                mx = z.max(axis=1)
                lse = mx + np.log(np.exp(z - mx[:, None]).sum(axis=1))
                total += float((lse - z[np.arange(len(win) - 1), win[1:]]).sum())
                scored += len(win) - 1
        finally:
            self.lib.llama_free(ctx)
            self.lib.llama_model_free(model)
        mean = total / scored
        return float(np.exp(mean)), mean, scored

    def tokenize(self, path, text):
        """Token ids of `text` with the model's vocabulary (no BOS, specials not parsed)."""
        mp = self.lib.llama_model_default_params()
        mp.vocab_only = True
        model = self.lib.llama_model_load_from_file(path.encode(), mp)
        if not model:
            raise RuntimeError(f"llama.cpp could not load the vocabulary of {path}")
        try:
            vocab = self.lib.llama_model_get_vocab(model)
            raw = text.encode("utf-8")
            n = len(raw) + 16
            out = (C.c_int32 * n)()
            k = self.lib.llama_tokenize(vocab, raw, len(raw), out, n, False, False)
            if k < 0:
                raise RuntimeError("llama_tokenize: buffer too small")
            return list(out[:k])
        finally:
            self.lib.llama_model_free(model)

    def detokenize(self, path, ids):
        mp = self.lib.llama_model_default_params()
        mp.vocab_only = True
        model = self.lib.llama_model_load_from_file(path.encode(), mp)
        if not model:
            raise RuntimeError(f"llama.cpp could not load the vocabulary of {path}")
        try:
            vocab = self.lib.llama_model_get_vocab(model)
            arr = (C.c_int32 * len(ids))(*ids)
            n = 16 * len(ids) + 64
            buf = C.create_string_buffer(n)
            k = self.lib.llama_detokenize(vocab, arr, len(ids), buf, n, False, False)
            if k < 0:
                raise RuntimeError("llama_detokenize: buffer too small")
            return buf.raw[:k].decode("utf-8")
        finally:
            self.lib.llama_model_free(model)
