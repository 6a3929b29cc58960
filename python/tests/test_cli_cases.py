"""Case files across tools: `rpa gen` writes safetensors that an independent
NumPy reader parses, `rpa run` agrees with rpa.attention bit for bit, a case
written here by an independent writer passes `rpa verify`, and a broken case
makes `rpa run` fail without writing a file. Needs RPA_CLI (set by ctest)."""

import json
import os
import struct
import subprocess

import numpy as np
import pytest

import rpa
from rpa_reference import make_batch

CLI = os.environ.get("RPA_CLI")
pytestmark = pytest.mark.skipif(not CLI, reason="RPA_CLI (the rpa binary) is not set")

NUMPY_DTYPE = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I32": np.int32}
SAFETENSORS_DTYPE = {np.dtype(v): k for k, v in NUMPY_DTYPE.items() if k != "BF16"}


def read_safetensors(path):
    """Straight from the format description: length, JSON header, data."""
    data = open(path, "rb").read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__", {})
    body = data[8 + length:]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        array = np.frombuffer(body[begin:end], dtype=NUMPY_DTYPE[entry["dtype"]])
        tensors[name] = array.reshape(entry["shape"])
    return tensors, metadata


def write_safetensors(path, tensors, metadata):
    header, offset, chunks = {"__metadata__": metadata}, 0, []
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPE[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def rpa_cli(*args):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)


def test_gen_run_matches_python_module(tmp_path):
    case, out_file = tmp_path / "c.safetensors", tmp_path / "o.safetensors"
    gen = rpa_cli("gen", "--out", case, "--dtype", "bf16", "--sinks", "--sliding-window", 20,
                  "--seed", 4)
    assert gen.returncode == 0, gen.stderr
    tensors, metadata = read_safetensors(case)
    assert metadata == {"sliding_window": "20"}
    assert tensors["q"].dtype == np.uint16 and tensors["sinks"].dtype == np.float32

    run = rpa_cli("run", case, "--out", out_file, "--lse")
    assert run.returncode == 0, run.stderr
    result, _ = read_safetensors(out_file)
    out, lse = rpa.attention(**tensors, dtype="bf16", sliding_window=20, return_lse=True)
    np.testing.assert_array_equal(result["out"], out)
    np.testing.assert_array_equal(result["lse"], lse)


def test_npy_directory_holds_the_same_case(tmp_path):
    assert rpa_cli("gen", "--out", tmp_path / "c.safetensors", "--seed", 9).returncode == 0
    assert rpa_cli("gen", "--out", tmp_path / "npy", "--npy", "--seed", 9).returncode == 0
    tensors, _ = read_safetensors(tmp_path / "c.safetensors")
    for name, array in tensors.items():
        np.testing.assert_array_equal(np.load(tmp_path / "npy" / f"{name}.npy"), array)
    assert json.load(open(tmp_path / "npy" / "options.json"))["dtype"] == "bf16"
    verify = rpa_cli("verify", tmp_path / "npy")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_case_from_an_independent_writer_verifies(tmp_path):
    b = make_batch(2, [(1, 50), (0, 0), (9, 20), (30, 0)], dtype="f16", sinks=True)
    write_safetensors(tmp_path / "c.safetensors", b,
                      {"logit_soft_cap": "15", "scale": "0.1", "note": "ignored"})
    verify = rpa_cli("verify", tmp_path / "c.safetensors", "--backend", "single-loop")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "PASS" in verify.stdout


def test_broken_case_writes_nothing(tmp_path):
    b = make_batch(2, [(1, 50), (9, 20)])
    b["block_table"][1, 1] = 1000
    write_safetensors(tmp_path / "c.safetensors", b, {})
    out_file = tmp_path / "o.safetensors"
    run = rpa_cli("run", tmp_path / "c.safetensors", "--out", out_file)
    assert run.returncode != 0
    assert "block_table[1, 1] = 1000" in run.stderr
    assert sorted(os.listdir(tmp_path)) == ["c.safetensors"]

    (tmp_path / "t.safetensors").write_bytes((tmp_path / "c.safetensors").read_bytes()[:-7])
    run = rpa_cli("run", tmp_path / "t.safetensors", "--out", out_file)
    assert run.returncode != 0 and "truncated" in run.stderr
    verify = rpa_cli("verify", tmp_path / "t.safetensors")
    assert verify.returncode == 1 and "truncated" in verify.stderr
    assert not out_file.exists()


def test_plan_of_a_case_matches_the_module(tmp_path):
    import json
    case = tmp_path / "c.safetensors"
    assert rpa_cli("gen", "--out", case, "--seed", 11, "--sliding-window", 30).returncode == 0
    plan = rpa_cli("plan", case, "--json")
    assert plan.returncode == 0, plan.stderr
    stats = json.loads(plan.stdout)
    tensors, _ = read_safetensors(case)
    expected = rpa.plan_stats(**tensors, dtype="bf16", sliding_window=30)
    for key in ("items", "decode_items", "prefill_items", "live_rows", "visible_kv_tokens",
                "capacity_kv_tokens"):
        assert stats[key] == expected[key], key
    missing = rpa_cli("plan", tmp_path / "absent.safetensors")
    assert missing.returncode == 1 and "absent.safetensors" in missing.stderr
