#!/usr/bin/env python3
"""The XLA custom call on a GPU (docs/xla.md): rpa.jax.ragged_paged_attention
under jax.jit with its operands on the GPU runs the "CUDA" FFI handler, and
must match rpa.attention on the same batch in NumPy on the CPU (within the
cuda backend's tolerance: other kernels, other bits), zero the rows of no
live slot, and raise rpa's message on bad metadata. Run by
scripts/gpu_session.sh with the bundle's module on PYTHONPATH; exits 1 on a
mismatch and 2 when it cannot run (no JAX GPU, no librpa_xla.so)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python", "tests"))

try:
    import jax
    import jax.numpy as jnp
    import ml_dtypes
    import numpy as np

    import rpa
    import rpa.jax
    from rpa_reference import make_batch
except ImportError as error:
    print(f"gpu_jax_check: cannot run: {error}")
    sys.exit(2)

gpus = [d for d in jax.devices() if d.platform == "gpu"]
if not gpus or not rpa.jax.cuda_registered:
    print(f"gpu_jax_check: cannot run: JAX GPUs {gpus}, "
          f"CUDA target registered {rpa.jax.cuda_registered}")
    sys.exit(2)

# Decode rows, chunks on context, a fresh prompt, empty slots; a long row
# that splits.
SLOTS = [(1, 40), (0, 0), (7, 33), (12, 0), (1, 3000), (64, 500)]
TOLERANCE = {"f32": 1e-5, "bf16": 8e-3}
call = jax.jit(rpa.jax.ragged_paged_attention,
               static_argnames=("scale", "sliding_window", "logit_soft_cap", "return_lse"))


def on_gpu(b):
    typed = {n: a.view(ml_dtypes.bfloat16) if a.dtype == np.uint16 else a for n, a in b.items()}
    return {n: jax.device_put(a, gpus[0]) for n, a in typed.items()}


def as_f32(x):
    x = np.asarray(x)
    if x.dtype == ml_dtypes.bfloat16:
        return x.astype(np.float32)
    if x.dtype == np.uint16:
        return (x.astype(np.uint32) << 16).view(np.float32)
    return x


failures = 0
for dtype in ("f32", "bf16"):
    for options in ({}, {"sliding_window": 100, "logit_soft_cap": 20.0}):
        b = make_batch(5, SLOTS, kv_heads=2, group=4, head_dim=128, dtype=dtype, sinks=True)
        want, want_lse = rpa.attention(**b, dtype=dtype, backend="cpu", return_lse=True, **options)
        out, lse = call(**on_gpu(b), return_lse=True, **options)
        ran_on = {d.platform for d in out.devices()}
        live = int(b["query_start_len"][-1])
        error = float(np.max(np.abs(as_f32(out)[:live] - as_f32(want)[:live])))
        lse_error = float(np.max(np.abs(np.asarray(lse)[:live] - want_lse[:live])))
        padding_zero = bool(np.all(as_f32(out)[live:] == 0.0))
        ok = (ran_on == {"gpu"} and error <= TOLERANCE[dtype] and lse_error <= 1e-4
              and padding_zero)
        failures += not ok
        print(f"{dtype} {options or 'plain'} on {sorted(ran_on)}: max |xla cuda - cpu| out "
              f"{error:.2e} lse {lse_error:.2e}, padding rows zero {padding_zero}: "
              f"{'ok' if ok else 'FAIL'}")

# Bad metadata: rpa's own message, as an XLA error, on the GPU too.
b = make_batch(5, SLOTS, kv_heads=2, group=4, head_dim=128, dtype="f32")
b["block_table"] = b["block_table"].copy()
b["block_table"][0, 0] = -1
try:
    call(**on_gpu(b)).block_until_ready()
    print("bad block_table: no error: FAIL")
    failures += 1
except Exception as error:  # XlaRuntimeError; its type is not public API
    said = "block_table[0, 0] = -1" in str(error)
    failures += not said
    print(f"bad block_table: {'ok' if said else 'FAIL'}: {str(error).splitlines()[0][:160]}")
sys.exit(1 if failures else 0)
