#include "bench/scenarios.h"

#include <utility>

namespace rpa::bench {
namespace {

// Llama-3-8B attention geometry, as in the issue and the demo.
constexpr int kKvHeads = 8, kHeadsPerKv = 4, kHeadDim = 128, kPageSize = 16;
// decode-capacity: 8 rows × 2048 keys (67 MB of K/V, twice the L3 of the
// machine of record) at capacity = live and at 64× live.
constexpr int kCapacityLive = 8, kCapacityKeys = 2048, kCapacityMultiplier = 64;

gen::BatchSpec base_spec(int capacity) {
  gen::BatchSpec spec;
  spec.seed = 2024;
  spec.num_kv_heads = kKvHeads;
  spec.heads_per_kv = kHeadsPerKv;
  spec.head_dim = kHeadDim;
  spec.page_size = kPageSize;
  spec.dtype = DType::kBF16;
  spec.out_dtype = DType::kBF16;
  spec.batch_capacity = capacity;
  spec.token_padding = 0;
  // Useful bytes count each slot's K/V once; shared prefixes would make that ambiguous.
  spec.shared_prefix_fraction = 0.0;
  return spec;
}

gen::BatchSpec capacity_spec(int multiplier) {
  const int pages = kCapacityKeys / kPageSize;
  return decode_spec(kCapacityLive, kCapacityKeys, kCapacityLive * multiplier, pages * multiplier);
}

}  // namespace

gen::BatchSpec prefill_spec(int q_len, int context, DType dtype) {
  gen::BatchSpec spec = base_spec(8);
  spec.dtype = dtype;
  spec.out_dtype = dtype;
  spec.slots = {gen::SlotSpec{q_len, context}};
  spec.slot_positions = {2};
  return spec;
}

gen::BatchSpec decode_spec(int live, int keys, int capacity, int max_pages_per_seq) {
  gen::BatchSpec spec = base_spec(capacity);
  spec.max_pages_per_seq = max_pages_per_seq;
  for (int i = 0; i < live; ++i) {
    spec.slots.push_back(gen::SlotSpec{1, keys - 1});  // the row sees its context and itself
    spec.slot_positions.push_back(static_cast<int32_t>(int64_t{i} * capacity / live));
  }
  return spec;
}

std::vector<Scenario> all_scenarios() {
  std::vector<Scenario> list;
  list.push_back({"decode-long", "8 decode rows x 8192 keys in capacity 64, GQA 32/8, d128, bf16",
                  decode_spec(8, 8192, 64), std::nullopt, 1});
  list.push_back(
      {"decode-capacity",
       "8 decode rows x 2048 keys at capacity 512 slots x 8192 pages (64x live) vs 8 x 128",
       capacity_spec(kCapacityMultiplier), capacity_spec(1), kCapacityMultiplier});
  list.push_back({"prefill", "one fresh 2048-token prompt, causal, bf16",
                  prefill_spec(2048, 0, DType::kBF16), std::nullopt, 1});
  // f32 is read against the fp32 FMA peak (cpu_report.cc); with no bf16 widening
  // in its inner loop it shows how close the prefill kernel itself comes.
  list.push_back({"prefill-f32", "one fresh 2048-token prompt, causal, f32 in and out",
                  prefill_spec(2048, 0, DType::kF32), std::nullopt, 1});
  list.push_back({"prefill-chunk", "a 512-row chunk on 3584 tokens of context, bf16",
                  prefill_spec(512, 3584, DType::kBF16), std::nullopt, 1});
  list.push_back({"mixed", "the demo: 24 live slots (decode, chunks, prompts) in capacity 64",
                  gen::demo_spec(), std::nullopt, 1, true});
  return list;
}

std::optional<Scenario> find_scenario(std::string_view name) {
  for (Scenario& s : all_scenarios()) {
    if (s.name == name) return std::move(s);
  }
  return std::nullopt;
}

std::vector<SweepPoint> plot_sweep() {
  std::vector<SweepPoint> points;
  for (int keys : {512, 1024, 2048, 4096, 8192}) {
    points.push_back({"context", keys, decode_spec(8, keys, 64)});
  }
  for (int multiplier : {1, 4, 16, 64}) {
    points.push_back({"capacity", multiplier, capacity_spec(multiplier)});
  }
  return points;
}

}  // namespace rpa::bench
