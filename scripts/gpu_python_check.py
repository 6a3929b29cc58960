#!/usr/bin/env python3
"""The Python module's CUDA path on a GPU machine, with torch as the DLPack
producer: rpa.attention on CUDA tensors (out= and the caller's stream) must
match rpa.attention on the same batch in NumPy on the CPU. Run by
scripts/gpu_session.sh with the bundle's module on PYTHONPATH; exits 1 on a
mismatch and 2 when it cannot run (no torch, no GPU, no module)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python", "tests"))

try:
    import numpy as np
    import torch

    import rpa
    from rpa_reference import make_batch
except ImportError as error:
    print(f"gpu_python_check: cannot run: {error}")
    sys.exit(2)

if not rpa.cuda_built or not torch.cuda.is_available():
    print(f"gpu_python_check: cannot run: rpa.cuda_built={rpa.cuda_built}, "
          f"torch.cuda.is_available()={torch.cuda.is_available()}")
    sys.exit(2)

# Decode rows, chunks on context, a fresh prompt, an empty slot; a long row
# that splits.
SLOTS = [(1, 40), (0, 0), (7, 33), (12, 0), (1, 3000), (64, 500)]
TOLERANCE = {"f32": 1e-5, "bf16": 8e-3}
failures = 0
for dtype in ("f32", "bf16"):
    for sinks in (False, True):
        b = make_batch(11, SLOTS, kv_heads=2, group=4, head_dim=128, dtype=dtype, sinks=sinks)
        want, want_lse = rpa.attention(**b, dtype=dtype, backend="cpu", return_lse=True)

        def on_gpu(array):
            tensor = torch.from_numpy(np.ascontiguousarray(array))
            if dtype == "bf16" and array.dtype == np.uint16:
                tensor = tensor.view(torch.bfloat16)
            return tensor.cuda()

        data = {name: on_gpu(b[name]) for name in ("q", "k_cache", "v_cache", "sinks") if name in b}
        host = {name: b[name] for name in ("block_table", "seq_lens", "query_start_len")}
        out = torch.full_like(data["q"], 7.0)
        lse = torch.zeros(data["q"].shape[:3], dtype=torch.float32, device="cuda")
        stream = torch.cuda.current_stream()
        rpa.attention(**data, **host, dtype=dtype, out=out, lse=lse, stream=stream.cuda_stream)
        stream.synchronize()
        got = out.cpu()
        if dtype == "bf16":
            got = got.view(torch.int16).numpy().view(np.uint16)
            got_f = (got.astype(np.uint32) << 16).view(np.float32)
            want_f = (want.astype(np.uint32) << 16).view(np.float32)
        else:
            got_f, want_f = got.numpy(), want
        live = int(b["query_start_len"][-1])
        error = float(np.max(np.abs(got_f[:live] - want_f[:live])))
        lse_error = float(np.max(np.abs(lse.cpu().numpy()[:live] - want_lse[:live])))
        padding_kept = bool(np.all(got_f[live:] == 7.0))
        ok = error <= TOLERANCE[dtype] and lse_error <= 1e-4 and padding_kept
        failures += not ok
        print(f"{dtype} sinks={sinks}: max |cuda - cpu| out {error:.2e} lse {lse_error:.2e}, "
              f"padding rows untouched {padding_kept}: {'ok' if ok else 'FAIL'}")
sys.exit(1 if failures else 0)
