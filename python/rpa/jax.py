"""rpa.jax: rpa's ragged paged attention as an XLA FFI custom call.

Importing this module loads librpa_xla.so and registers its handlers with
JAX under the target "rpa_ragged_paged_attention" (platform "cpu", and
"CUDA" when rpa was built with its cuda backend). The call then runs inside
jax.jit like any XLA op: its operands are XLA's buffers, read in place.
docs/xla.md describes the custom call itself, for producers of StableHLO.
"""

import ctypes

import jax
import jax.numpy as jnp
import numpy as np
from jax import ffi

import rpa

TARGET_NAME = "rpa_ragged_paged_attention"

# PyCapsule_New with a prototype of our own: jax.ffi.pycapsule sets the
# argtypes of the shared ctypes.pythonapi.PyCapsule_New, which breaks other
# ctypes users in the process (a DLPack producer, say).
_CAPSULE_NEW = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p,
                                 ctypes.c_void_p)(("PyCapsule_New", ctypes.pythonapi))


def _capsule(function):
    """An unnamed capsule holding a C function's address, as XLA's registry takes."""
    return _CAPSULE_NEW(ctypes.cast(function, ctypes.c_void_p), None, None)


# rpa.attention's dtype names, taken here too.
_DTYPE_NAMES = {"f32": jnp.float32, "bf16": jnp.bfloat16, "f16": jnp.float16}


def _register():
    path = rpa.xla_library()
    if path is None:
        raise ImportError(
            "rpa.jax needs librpa_xla.so, and this rpa package was built without it (no "
            "jaxlib, whose XLA FFI headers it compiles against, at build time): reinstall "
            "with `pip install .`, which fetches jaxlib for the build")
    library = ctypes.CDLL(path)
    library.rpa_xla_version.restype = ctypes.c_char_p
    built = library.rpa_xla_version().decode()
    if built != rpa.__version__:
        raise ImportError(f"{path} is rpa {built}, but the rpa module is {rpa.__version__}")
    ffi.register_ffi_target(TARGET_NAME, _capsule(library.rpa_xla_attention_host),
                            platform="cpu", api_version=1)
    # ctypes raises AttributeError for a symbol the library lacks.
    cuda = getattr(library, "rpa_xla_attention_cuda", None)
    if cuda is not None:
        ffi.register_ffi_target(TARGET_NAME, _capsule(cuda), platform="CUDA",
                                api_version=1)
    return library, cuda is not None


_LIBRARY, cuda_registered = _register()


def _out_dtype(out_dtype, q):
    if out_dtype is None:
        return q.dtype
    return jnp.dtype(_DTYPE_NAMES.get(out_dtype, out_dtype))


def _group_heads(q, k_cache, combined):
    """q [tokens, q_heads, head_dim] (JAX's layout) as rpa's
    [tokens, kv_heads, heads_per_kv, head_dim]: a reshape, free in XLA."""
    if k_cache.ndim != 4:
        raise ValueError(f"k_cache has rank {k_cache.ndim}; with a 3-d q the cache must be "
                         "[num_pages, page_size, num_kv_heads, head_dim]"
                         + (" (2 * num_kv_heads in kv_pages)" if combined else ""))
    kv_heads = k_cache.shape[2] // 2 if combined else k_cache.shape[2]
    tokens, q_heads, head_dim = q.shape
    if kv_heads == 0 or q_heads % kv_heads != 0:
        raise ValueError(f"q has {q_heads} heads (dimension 1), which is not a multiple of "
                         f"the cache's {kv_heads} kv heads")
    return q.reshape(tokens, kv_heads, q_heads // kv_heads, head_dim)


def _mask_slots(seq_lens, query_start_len, num_seqs):
    """JAX's kernel takes the first num_seqs slots as live; rpa reads an inactive
    slot from its lengths. Slots from num_seqs on get seq_len 0 and no rows."""
    count = jnp.asarray(num_seqs, jnp.int32).reshape(-1)[0]
    slot = jnp.arange(seq_lens.shape[0], dtype=jnp.int32)
    edge = jnp.arange(query_start_len.shape[0], dtype=jnp.int32)
    seq_lens = jnp.where(slot < count, seq_lens, 0)
    query_start_len = jnp.where(edge <= count, query_start_len, query_start_len[count])
    return seq_lens, query_start_len


def _scale_operand(scale, name):
    """A Python float or a 0-d array as the [1] f32 tensor rpa reads."""
    if scale is None:
        raise ValueError(f"{name} is missing: fp8 caches take both k_scale and v_scale")
    return jnp.atleast_1d(jnp.asarray(scale, jnp.float32))


def ragged_paged_attention(q, k_cache, v_cache, block_table, seq_lens, query_start_len, *,
                           scale=None, sliding_window=0, logit_soft_cap=0.0, sinks=None,
                           k_scale=None, v_scale=None, num_seqs=None, out_dtype=None,
                           return_lse=False):
    """Ragged paged attention as an XLA custom call (docs/xla.md); usable under
    jax.jit, where the keyword options are static.

    Layouts (both read in place, no copy):
      rpa's: q [tokens, kv_heads, heads_per_kv, head_dim], k_cache and v_cache
        [num_pages, page_size, kv_heads, head_dim].
      JAX's (ragged_paged_attention in jax.experimental.pallas.ops.tpu):
        v_cache=None and k_cache is kv_pages [num_pages, page_size,
        2 * kv_heads, head_dim], K in the even heads and V in the odd ones; q
        may then be [tokens, q_heads, head_dim] too (query head h belongs to kv
        head h // heads_per_kv), and out has q's shape.
    block_table [capacity, max_pages_per_seq], seq_lens [capacity] and
    query_start_len [capacity + 1] are int32; num_seqs (JAX's [1] array or an
    int) makes the slots from num_seqs on inactive.

    scale defaults to 1/sqrt(head_dim) (JAX's kernel: sm_scale=1.0);
    sliding_window W > 0 lets each query see its W most recent keys;
    logit_soft_cap c > 0 caps logits at c * tanh(x / c); sinks f32
    [kv_heads * heads_per_kv]; k_scale, v_scale: f32 [1] or [kv_heads] (or a
    Python float) for float8_e4m3fn caches. out_dtype: q's dtype (default) or
    float32. Returns out, and lse f32 [tokens, kv_heads, heads_per_kv] (or
    [tokens, q_heads] for a 3-d q) with return_lse=True. Rows of no live slot
    are zero.

    Invalid calls raise when the call runs, with rpa's message (an
    XlaRuntimeError, a RuntimeError, that says INVALID_ARGUMENT).
    """
    combined = v_cache is None
    q4 = _group_heads(q, k_cache, combined) if q.ndim == 3 else q
    if num_seqs is not None:
        seq_lens, query_start_len = _mask_slots(seq_lens, query_start_len, num_seqs)
    operands = [q4, k_cache] + ([] if combined else [v_cache])
    operands += [block_table, seq_lens, query_start_len]
    if sinks is not None:
        operands.append(sinks)
    has_kv_scales = k_scale is not None or v_scale is not None
    if has_kv_scales:
        operands += [_scale_operand(k_scale, "k_scale"), _scale_operand(v_scale, "v_scale")]

    results = [jax.ShapeDtypeStruct(q4.shape, _out_dtype(out_dtype, q))]
    if return_lse:
        results.append(jax.ShapeDtypeStruct(q4.shape[:3], jnp.float32))
    call = ffi.ffi_call(TARGET_NAME, results, vmap_method="sequential")
    outputs = call(
        *operands,
        scale=np.float32(0.0 if scale is None else scale),
        sliding_window=np.int32(sliding_window or 0),
        logit_soft_cap=np.float32(logit_soft_cap or 0.0),
        combined_kv=np.bool_(combined),
        has_sinks=np.bool_(sinks is not None),
        has_kv_scales=np.bool_(has_kv_scales))
    out = outputs[0].reshape(q.shape)
    if not return_lse:
        return out
    lse = outputs[1]
    return out, (lse.reshape(q.shape[:2]) if q.ndim == 3 else lse)
