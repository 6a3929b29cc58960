#include "attributes.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <string_view>

#include "core/message.h"
#include "rpa_xla.h"

namespace rpa::xla_ffi {
namespace {

// Producers differ in the widths they emit (JAX: what the caller typed,
// StableHLO text: often i64 and f64), so each attribute takes both widths.
Status read_float(const ffi::Dictionary& attrs, std::string_view name, float* value) {
  if (auto f = attrs.get<float>(name); f.has_value()) {
    *value = *f;
    return Status::Ok();
  }
  if (auto d = attrs.get<double>(name); d.has_value()) {
    *value = static_cast<float>(*d);
    return Status::Ok();
  }
  return Status::Invalid(cat("attribute ", name, " must be an f32 (or f64) scalar"));
}

Status read_int32(const ffi::Dictionary& attrs, std::string_view name, int32_t* value) {
  if (auto i = attrs.get<int32_t>(name); i.has_value()) {
    *value = *i;
    return Status::Ok();
  }
  if (auto l = attrs.get<int64_t>(name); l.has_value()) {
    if (*l < std::numeric_limits<int32_t>::min() || *l > std::numeric_limits<int32_t>::max()) {
      return Status::Invalid(cat("attribute ", name, " = ", *l, " does not fit in int32"));
    }
    *value = static_cast<int32_t>(*l);
    return Status::Ok();
  }
  return Status::Invalid(cat("attribute ", name, " must be an i32 (or i64) scalar"));
}

Status read_bool(const ffi::Dictionary& attrs, std::string_view name, bool* value) {
  if (auto b = attrs.get<bool>(name); b.has_value()) {
    *value = *b;
    return Status::Ok();
  }
  return Status::Invalid(cat("attribute ", name, " must be a boolean (i1) scalar"));
}

// The first attribute name that is not one of `known`, or "" when the
// headers cannot list names: older XLA FFI headers (jaxlib 0.6's, for one)
// have no iteration over a dictionary; the count check holds without it.
template <typename Dictionary, size_t N>
std::string_view first_unknown(const Dictionary& attrs, const std::string_view (&known)[N]) {
  if constexpr (requires { attrs.begin() != attrs.end(); }) {
    for (auto it = attrs.begin(); it != attrs.end(); ++it) {
      const std::string_view name = *it;
      if (std::find(std::begin(known), std::end(known), name) == std::end(known)) return name;
    }
  }
  return "";
}

}  // namespace

Status read_attributes(const ffi::Dictionary& attrs, AttentionOptions* options,
                       OperandLayout* layout) {
  static constexpr std::string_view kKnown[] = {"scale",       "sliding_window", "logit_soft_cap",
                                                "combined_kv", "has_sinks",      "has_kv_scales"};
  size_t present = 0;
  auto read = [&](std::string_view name, auto reader, auto* value) {
    if (!attrs.contains(name)) return Status::Ok();
    ++present;
    return reader(attrs, name, value);
  };
  RPA_RETURN_IF_ERROR(read(kKnown[0], read_float, &options->scale));
  RPA_RETURN_IF_ERROR(read(kKnown[1], read_int32, &options->sliding_window));
  RPA_RETURN_IF_ERROR(read(kKnown[2], read_float, &options->logit_soft_cap));
  RPA_RETURN_IF_ERROR(read(kKnown[3], read_bool, &layout->combined_kv));
  RPA_RETURN_IF_ERROR(read(kKnown[4], read_bool, &layout->has_sinks));
  RPA_RETURN_IF_ERROR(read(kKnown[5], read_bool, &layout->has_kv_scales));
  // A misspelt option must not pass silently as its default.
  if (present != attrs.size()) {
    const std::string_view unknown = first_unknown(attrs, kKnown);
    return Status::Invalid(cat(unknown.empty() ? "an unknown attribute" : "unknown attribute ",
                               unknown, "; ", RPA_XLA_TARGET_NAME,
                               " takes scale, sliding_window, logit_soft_cap, combined_kv, ",
                               "has_sinks and has_kv_scales"));
  }
  return Status::Ok();
}

}  // namespace rpa::xla_ffi
