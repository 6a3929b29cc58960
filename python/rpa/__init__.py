"""rpa: ragged paged attention for LLM serving (docs/python.md).

rpa.attention, rpa.plan_stats, rpa.merge_states and rpa.write_kv take NumPy
arrays and DLPack tensors; rpa.jax.ragged_paged_attention is the same
attention as an XLA custom call inside jax.jit (docs/xla.md). rpa.jax is
imported on first use, so `import rpa` never imports JAX.
"""

import importlib
import os

from rpa._rpa import (
    UnsupportedError,
    __version__,
    attention,
    cuda_built,
    device_tables,
    merge_states,
    plan_stats,
    write_kv,
)

# Shown as rpa.UnsupportedError in tracebacks, where users catch it.
UnsupportedError.__module__ = __name__

__all__ = [
    "UnsupportedError",
    "__version__",
    "attention",
    "cuda_built",
    "device_tables",
    "merge_states",
    "plan_stats",
    "write_kv",
    "xla_library",
]

_XLA_LIBRARY = "librpa_xla.so"


def xla_library():
    """The path of librpa_xla.so, the XLA FFI handlers that rpa.jax registers
    and that a StableHLO producer loads itself (docs/xla.md), or None when
    this package was built without them."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), _XLA_LIBRARY)
    return path if os.path.exists(path) else None


def __getattr__(name):
    # rpa.jax on first use: importing JAX costs about a second.
    if name == "jax":
        return importlib.import_module("rpa.jax")
    raise AttributeError(f"module 'rpa' has no attribute {name!r}")
