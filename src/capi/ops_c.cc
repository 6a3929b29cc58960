// The C entries of the cache and state operations: rpa_merge_states,
// rpa_write_kv and rpa_write_kv_scaled.
#include "capi/convert.h"
#include "capi/errors.h"
#include "rpa/merge_states.h"
#include "rpa/write_kv.h"

using rpa::capi::guarded;
using rpa::capi::to_view;

extern "C" {

rpa_status rpa_merge_states(const rpa_merge_inputs* inputs, const rpa_tensor* out,
                            const rpa_tensor* lse) {
  return guarded([&] {
    if (inputs == nullptr || out == nullptr || lse == nullptr) {
      return rpa::Status::Invalid("rpa_merge_states: inputs, out and lse must not be NULL");
    }
    rpa::MergeInputs in;
    rpa::TensorView out_view, lse_view;
    RPA_RETURN_IF_ERROR(to_view(inputs->out_a, "out_a", &in.out_a));
    RPA_RETURN_IF_ERROR(to_view(inputs->lse_a, "lse_a", &in.lse_a));
    RPA_RETURN_IF_ERROR(to_view(inputs->out_b, "out_b", &in.out_b));
    RPA_RETURN_IF_ERROR(to_view(inputs->lse_b, "lse_b", &in.lse_b));
    RPA_RETURN_IF_ERROR(to_view(*out, "out", &out_view));
    RPA_RETURN_IF_ERROR(to_view(*lse, "lse", &lse_view));
    return rpa::merge_states(in, out_view, lse_view);
  });
}

rpa_status rpa_write_kv(const rpa_tensor* k_new, const rpa_tensor* v_new,
                        const rpa_tensor* slot_mapping, const rpa_tensor* k_cache,
                        const rpa_tensor* v_cache) {
  return rpa_write_kv_scaled(k_new, v_new, slot_mapping, k_cache, v_cache, nullptr, nullptr);
}

rpa_status rpa_write_kv_scaled(const rpa_tensor* k_new, const rpa_tensor* v_new,
                               const rpa_tensor* slot_mapping, const rpa_tensor* k_cache,
                               const rpa_tensor* v_cache, const rpa_tensor* k_scale,
                               const rpa_tensor* v_scale) {
  return guarded([&] {
    if (k_new == nullptr || v_new == nullptr || slot_mapping == nullptr || k_cache == nullptr ||
        v_cache == nullptr) {
      return rpa::Status::Invalid("rpa_write_kv: no tensor but the scales may be NULL");
    }
    rpa::TensorView k, v, slots;
    rpa::KvCache cache;
    RPA_RETURN_IF_ERROR(to_view(*k_new, "k_new", &k));
    RPA_RETURN_IF_ERROR(to_view(*v_new, "v_new", &v));
    RPA_RETURN_IF_ERROR(to_view(*slot_mapping, "slot_mapping", &slots));
    RPA_RETURN_IF_ERROR(to_view(*k_cache, "k_cache", &cache.k_cache));
    RPA_RETURN_IF_ERROR(to_view(*v_cache, "v_cache", &cache.v_cache));
    if (k_scale != nullptr) RPA_RETURN_IF_ERROR(to_view(*k_scale, "k_scale", &cache.k_scale));
    if (v_scale != nullptr) RPA_RETURN_IF_ERROR(to_view(*v_scale, "v_scale", &cache.v_scale));
    return rpa::write_kv(k, v, slots, cache);
  });
}

}  // extern "C"
