"""The custom call as a StableHLO producer (ZML, say) writes it, by hand, in
the form docs/xla.md gives: api_version 4, a dictionary backend_config,
explicit row-major layouts. XLA's CPU client parses, compiles and runs the
module; rpa.jax is imported only to register the handler."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from jax.extend import backend  # noqa: E402

import rpa  # noqa: E402
import rpa.jax  # noqa: E402, F401  (registers rpa_ragged_paged_attention)
from rpa_reference import make_batch  # noqa: E402

CPU = backend.get_backend("cpu")
pytestmark = pytest.mark.skipif(not hasattr(CPU, "compile_and_load"),
                                reason="this jaxlib's client has no compile_and_load")


def tensor(shape, element):
    return "tensor<" + "x".join(str(d) for d in shape) + f"x{element}>"


def layout(rank):
    dims = ", ".join(str(d) for d in reversed(range(rank)))
    return f"dense<[{dims}]> : tensor<{rank}xindex>"


def module(operands, result, backend_config):
    """One function calling the custom call on its arguments."""
    args = ", ".join(f"%a{i}: {t}" for i, (t, _) in enumerate(operands))
    names = ", ".join(f"%a{i}" for i in range(len(operands)))
    types = ", ".join(t for t, _ in operands)
    return f"""
func.func public @main({args}) -> {result[0]} {{
  %out = stablehlo.custom_call @rpa_ragged_paged_attention({names}) {{
    api_version = 4 : i32,
    backend_config = {{{backend_config}}},
    operand_layouts = [{", ".join(layout(rank) for _, rank in operands)}],
    result_layouts = [{layout(result[1])}]
  }} : ({types}) -> {result[0]}
  return %out : {result[0]}
}}"""


def run(text, arrays):
    executable = CPU.compile_and_load(text, jax.devices("cpu"))
    return np.asarray(executable.execute([jax.device_put(a) for a in arrays])[0])


def test_separate_caches_with_wide_attributes():
    b = make_batch(31, [(1, 40), (0, 0), (7, 33), (12, 0)])
    names = ("q", "k_cache", "v_cache", "block_table", "seq_lens", "query_start_len")
    operands = [(tensor(b[n].shape, "f32" if n in names[:3] else "i32"), b[n].ndim)
                for n in names]
    # i64 and f64, as MLIR text writes integers and floats by default.
    text = module(operands, (operands[0][0], 4), "sliding_window = 16 : i64, scale = 0.125 : f64")
    got = run(text, [b[n] for n in names])
    np.testing.assert_array_equal(got, rpa.attention(**b, sliding_window=16, scale=0.125))


def test_combined_cache_and_sinks():
    b = make_batch(32, [(3, 50), (1, 9)], kv_heads=2, group=2, sinks=True)
    k, v = b["k_cache"], b["v_cache"]
    kv_pages = np.empty(k.shape[:2] + (4, k.shape[3]), np.float32)
    kv_pages[:, :, 0::2], kv_pages[:, :, 1::2] = k, v
    arrays = [b["q"], kv_pages, b["block_table"], b["seq_lens"], b["query_start_len"],
              b["sinks"]]
    operands = [(tensor(a.shape, "i32" if a.dtype == np.int32 else "f32"), a.ndim)
                for a in arrays]
    text = module(operands, (operands[0][0], 4),
                  "combined_kv = true, has_sinks = true, logit_soft_cap = 30.0 : f32")
    np.testing.assert_array_equal(run(text, arrays), rpa.attention(**b, logit_soft_cap=30.0))
