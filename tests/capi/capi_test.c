/* The C API from plain C: a ragged batch (a decode row, a chunked prefill and
 * an inactive slot between them, pages out of order) checked against a naive
 * double-precision loop written here; plan + run against one-shot;
 * fp8 caches with their scales; merge_states and write_kv; and the error
 * paths: codes, messages, and outputs left untouched. */
#include <math.h>
#include <stdint.h>
#include <rpa/rpa.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

enum {
  kKvHeads = 2,
  kGroup = 2,
  kDim = 64,
  kPage = 16,
  kPages = 6,
  kSlots = 3,
  kMaxPages = 3,
  kTokens = 6, /* 5 live rows + 1 padding row */
};
#define kQElems (kTokens * kKvHeads * kGroup * kDim)
#define kKvElems (kPages * kPage * kKvHeads * kDim)
#define kSentinel -7.0f

static float q[kQElems], k_cache[kKvElems], v_cache[kKvElems];
static float out[kQElems], out2[kQElems], lse[kTokens * kKvHeads * kGroup];
/* Slot 0: decode, seq_len 20 (pages 4, 1). Slot 1: inactive. Slot 2: chunked
 * prefill of 4 rows on 30 keys of context, seq_len 34 (pages 5, 0, 2). */
static int32_t block_table[kSlots * kMaxPages] = {4, 1, -1, -1, -1, -1, 5, 0, 2};
static int32_t seq_lens[kSlots] = {20, 0, 34};
static int32_t query_start_len[kSlots + 1] = {0, 1, 1, 5};

static rpa_tensor tensor(void* data, rpa_dtype dtype, int rank, int64_t d0, int64_t d1, int64_t d2,
                         int64_t d3) {
  rpa_tensor t;
  memset(&t, 0, sizeof(t));
  t.data = data;
  t.dtype = dtype;
  t.rank = rank;
  const int64_t dims[4] = {d0, d1, d2, d3};
  for (int d = 0; d < rank; ++d) t.shape[d] = dims[d];
  return t;
}

static rpa_attention_inputs make_inputs(void) {
  rpa_attention_inputs in;
  memset(&in, 0, sizeof(in));
  in.q = tensor(q, RPA_F32, 4, kTokens, kKvHeads, kGroup, kDim);
  in.k_cache = tensor(k_cache, RPA_F32, 4, kPages, kPage, kKvHeads, kDim);
  in.v_cache = tensor(v_cache, RPA_F32, 4, kPages, kPage, kKvHeads, kDim);
  in.block_table = tensor(block_table, RPA_I32, 2, kSlots, kMaxPages, 0, 0);
  in.seq_lens = tensor(seq_lens, RPA_I32, 1, kSlots, 0, 0, 0);
  in.query_start_len = tensor(query_start_len, RPA_I32, 1, kSlots + 1, 0, 0, 0);
  return in;
}

static rpa_attention_outputs make_outputs(float* o, float* l) {
  rpa_attention_outputs outputs;
  memset(&outputs, 0, sizeof(outputs));
  outputs.out = tensor(o, RPA_F32, 4, kTokens, kKvHeads, kGroup, kDim);
  if (l != NULL) outputs.lse = tensor(l, RPA_F32, 3, kTokens, kKvHeads, kGroup, 0);
  for (int i = 0; i < kQElems; ++i) o[i] = kSentinel;
  return outputs;
}

static const float* key_or_value(const float* cache, int slot, int pos, int h) {
  const int page = block_table[slot * kMaxPages + pos / kPage];
  return cache + ((page * kPage + pos % kPage) * kKvHeads + h) * kDim;
}

/* max |out - naive| over live rows; lse too when given. */
static double naive_error(const float* o, const float* l) {
  const double scale = 1.0 / sqrt((double)kDim);
  double worst = 0.0;
  for (int s = 0; s < kSlots; ++s) {
    const int q_len = query_start_len[s + 1] - query_start_len[s];
    if (seq_lens[s] == 0 || q_len == 0) continue;
    for (int i = 0; i < q_len; ++i) {
      const int t = query_start_len[s] + i, keys = seq_lens[s] - q_len + i + 1;
      for (int h = 0; h < kKvHeads; ++h) {
        for (int g = 0; g < kGroup; ++g) {
          const float* qr = q + ((t * kKvHeads + h) * kGroup + g) * kDim;
          double logits[kPage * kMaxPages], m = -INFINITY, sum = 0.0, acc[kDim] = {0};
          for (int j = 0; j < keys; ++j) {
            const float* kr = key_or_value(k_cache, s, j, h);
            double dot = 0.0;
            for (int d = 0; d < kDim; ++d) dot += (double)qr[d] * kr[d];
            logits[j] = dot * scale;
            m = fmax(m, logits[j]);
          }
          for (int j = 0; j < keys; ++j) {
            const double p = exp(logits[j] - m);
            const float* vr = key_or_value(v_cache, s, j, h);
            sum += p;
            for (int d = 0; d < kDim; ++d) acc[d] += p * vr[d];
          }
          const float* got = o + ((t * kKvHeads + h) * kGroup + g) * kDim;
          for (int d = 0; d < kDim; ++d) worst = fmax(worst, fabs(got[d] - acc[d] / sum));
          if (l != NULL)
            worst = fmax(worst, fabs(l[(t * kKvHeads + h) * kGroup + g] - (m + log(sum))));
        }
      }
    }
  }
  return worst;
}

static void fill_inputs(void) {
  unsigned state = 12345u;
  for (int i = 0; i < kQElems; ++i)
    q[i] = (float)((state = state * 1103515245u + 12345u) >> 16) / 65536.0f - 0.5f;
  for (int i = 0; i < kKvElems; ++i) {
    k_cache[i] = (float)((state = state * 1103515245u + 12345u) >> 16) / 65536.0f - 0.5f;
    v_cache[i] = (float)((state = state * 1103515245u + 12345u) >> 16) / 65536.0f - 0.5f;
  }
  /* Page 3 is referenced by no live entry: poison it. */
  for (int i = 3 * kPage * kKvHeads * kDim; i < 4 * kPage * kKvHeads * kDim; ++i) {
    k_cache[i] = NAN;
    v_cache[i] = NAN;
  }
}

static int untouched(const float* o) {
  for (int i = 0; i < kQElems; ++i) {
    if (o[i] != kSentinel) return 0;
  }
  return 1;
}

static void test_one_shot(void) {
  const rpa_attention_inputs in = make_inputs();
  const rpa_attention_outputs outputs = make_outputs(out, lse);
  CHECK(rpa_attention(&in, NULL, &outputs) == RPA_OK);
  CHECK(strcmp(rpa_last_error_message(), "") == 0);
  CHECK(naive_error(out, lse) < 2e-5);
  /* The padding row is never written. */
  CHECK(out[5 * kKvHeads * kGroup * kDim] == kSentinel);

  rpa_options options;
  memset(&options, 0, sizeof(options));
  options.backend = RPA_BACKEND_REFERENCE;
  const rpa_attention_outputs reference = make_outputs(out2, NULL);
  CHECK(rpa_attention(&in, &options, &reference) == RPA_OK);
  CHECK(naive_error(out2, NULL) < 1e-6);
}

static void test_plan_and_run(void) {
  const rpa_attention_inputs in = make_inputs();
  rpa_plan* plan = NULL;
  CHECK(rpa_plan_create(&in, NULL, &plan) == RPA_OK);
  CHECK(plan != NULL);
  rpa_plan_stats stats;
  CHECK(rpa_plan_get_stats(plan, &stats) == RPA_OK);
  CHECK(stats.batch_capacity == kSlots);
  CHECK(stats.live_slots == 2);
  CHECK(stats.decode_rows == 1 && stats.prefill_rows == 4);

  rpa_layer_inputs layer;
  memset(&layer, 0, sizeof(layer));
  layer.q = in.q;
  layer.k_cache = in.k_cache;
  layer.v_cache = in.v_cache;
  /* The plan holds its own metadata copy: clobbering the caller's buffer
   * after planning must not matter. */
  const int32_t saved = block_table[0];
  block_table[0] = -1;
  const rpa_attention_outputs planned = make_outputs(out2, NULL);
  CHECK(rpa_plan_run(plan, &layer, &planned) == RPA_OK);
  block_table[0] = saved;
  const rpa_attention_outputs one_shot = make_outputs(out, NULL);
  CHECK(rpa_attention(&in, NULL, &one_shot) == RPA_OK);
  CHECK(memcmp(out, out2, sizeof(out)) == 0);

  /* A layer of another geometry is refused with a message. */
  layer.q.shape[0] = kTokens - 1;
  const rpa_attention_outputs again = make_outputs(out2, NULL);
  CHECK(rpa_plan_run(plan, &layer, &again) == RPA_INVALID_ARGUMENT);
  CHECK(strstr(rpa_last_error_message(), "plan was made for") != NULL);
  CHECK(untouched(out2));
  rpa_plan_destroy(plan);
  rpa_plan_destroy(NULL);
}

static void test_errors(void) {
  rpa_attention_inputs in = make_inputs();
  const rpa_attention_outputs outputs = make_outputs(out, NULL);

  block_table[7] = -1; /* slot 2's second live page */
  CHECK(rpa_attention(&in, NULL, &outputs) == RPA_INVALID_ARGUMENT);
  CHECK(strstr(rpa_last_error_message(), "block_table[2, 1] = -1") != NULL);
  CHECK(untouched(out));
  rpa_plan* plan = NULL;
  CHECK(rpa_plan_create(&in, NULL, &plan) == RPA_INVALID_ARGUMENT);
  CHECK(plan == NULL);
  block_table[7] = 0;

  in.q.dtype = 9;
  CHECK(rpa_attention(&in, NULL, &outputs) == RPA_INVALID_ARGUMENT);
  CHECK(strstr(rpa_last_error_message(), "q: dtype 9 is not an rpa_dtype") != NULL);
  in.q.dtype = RPA_F32;

  in.q.shape[3] = 72; /* and k, v: a head_dim with no kernel */
  in.k_cache.shape[3] = 72;
  in.v_cache.shape[3] = 72;
  CHECK(rpa_attention(&in, NULL, &outputs) != RPA_OK);
  CHECK(strlen(rpa_last_error_message()) > 0);
  in = make_inputs();

  rpa_options options;
  memset(&options, 0, sizeof(options));
  options.backend = 42;
  CHECK(rpa_attention(&in, &options, &outputs) == RPA_INVALID_ARGUMENT);
  CHECK(strstr(rpa_last_error_message(), "options.backend = 42") != NULL);

  CHECK(rpa_attention(NULL, NULL, &outputs) == RPA_INVALID_ARGUMENT);
  CHECK(rpa_plan_run(NULL, NULL, NULL) == RPA_INVALID_ARGUMENT);
  CHECK(rpa_plan_get_stats(NULL, NULL) == RPA_INVALID_ARGUMENT);
  CHECK(untouched(out));

  /* A successful call clears the message. */
  CHECK(rpa_attention(&in, NULL, &outputs) == RPA_OK);
  CHECK(strcmp(rpa_last_error_message(), "") == 0);
}

static void test_merge_states(void) {
  const rpa_attention_inputs in = make_inputs();
  const rpa_attention_outputs outputs = make_outputs(out, lse);
  CHECK(rpa_attention(&in, NULL, &outputs) == RPA_OK);
  /* A result merged with itself keeps out and doubles the denominator. */
  static float merged[kQElems], merged_lse[kTokens * kKvHeads * kGroup];
  rpa_merge_inputs parts;
  memset(&parts, 0, sizeof(parts));
  parts.out_a = parts.out_b = outputs.out;
  parts.lse_a = parts.lse_b = outputs.lse;
  const rpa_tensor merged_out = tensor(merged, RPA_F32, 4, kTokens, kKvHeads, kGroup, kDim);
  const rpa_tensor merged_lse_t = tensor(merged_lse, RPA_F32, 3, kTokens, kKvHeads, kGroup, 0);
  CHECK(rpa_merge_states(&parts, &merged_out, &merged_lse_t) == RPA_OK);
  const int live = 5 * kKvHeads * kGroup;
  for (int i = 0; i < live * kDim; ++i) CHECK(fabsf(merged[i] - out[i]) <= 1e-6f);
  for (int i = 0; i < live; ++i) CHECK(fabsf(merged_lse[i] - (lse[i] + logf(2.0f))) <= 1e-5f);

  parts.lse_b.dtype = RPA_BF16;
  CHECK(rpa_merge_states(&parts, &merged_out, &merged_lse_t) == RPA_INVALID_ARGUMENT);
  CHECK(strstr(rpa_last_error_message(), "lse_b") != NULL);
  CHECK(rpa_merge_states(NULL, NULL, NULL) == RPA_INVALID_ARGUMENT);
}

static void test_write_kv(void) {
  enum { kCachePages = 2, kNew = 2 };
  static float k_new[kNew * kKvHeads * kDim], v_new[kNew * kKvHeads * kDim];
  static float kc[kCachePages * kPage * kKvHeads * kDim], vc[kCachePages * kPage * kKvHeads * kDim];
  for (int i = 0; i < kNew * kKvHeads * kDim; ++i) {
    k_new[i] = (float)i;
    v_new[i] = -(float)i;
  }
  int32_t slot_mapping[kNew] = {kPage + 2, -1}; /* page 1, offset 2; then padding */
  const rpa_tensor kn = tensor(k_new, RPA_F32, 3, kNew, kKvHeads, kDim, 0);
  const rpa_tensor vn = tensor(v_new, RPA_F32, 3, kNew, kKvHeads, kDim, 0);
  const rpa_tensor slots = tensor(slot_mapping, RPA_I32, 1, kNew, 0, 0, 0);
  const rpa_tensor kct = tensor(kc, RPA_F32, 4, kCachePages, kPage, kKvHeads, kDim);
  const rpa_tensor vct = tensor(vc, RPA_F32, 4, kCachePages, kPage, kKvHeads, kDim);
  CHECK(rpa_write_kv(&kn, &vn, &slots, &kct, &vct) == RPA_OK);
  const int row = (kPage + 2) * kKvHeads * kDim, row_size = kKvHeads * kDim;
  for (int i = 0; i < kCachePages * kPage * kKvHeads * kDim; ++i) {
    const int inside = i >= row && i < row + row_size;
    CHECK(kc[i] == (inside ? k_new[i - row] : 0.0f));
    CHECK(vc[i] == (inside ? v_new[i - row] : 0.0f));
  }

  slot_mapping[1] = kCachePages * kPage; /* one past the last slot */
  memset(kc, 0, sizeof(kc));
  CHECK(rpa_write_kv(&kn, &vn, &slots, &kct, &vct) == RPA_INVALID_ARGUMENT);
  CHECK(strstr(rpa_last_error_message(), "slot_mapping[1]") != NULL);
  for (int i = 0; i < kCachePages * kPage * kKvHeads * kDim; ++i) CHECK(kc[i] == 0.0f);
  CHECK(rpa_write_kv(NULL, &vn, &slots, &kct, &vct) == RPA_INVALID_ARGUMENT);
}

/* One decode row over 5 keys of one fp8 page whose K rows are all equal, so
 * every key weighs 1/5: out = mean of v_j * v_scale, whatever k_scale. */
static void test_fp8(void) {
  enum { kKeys = 5 };
  static uint8_t k8[kPage * kDim], v8[kPage * kDim];
  static float q1[kDim], out1[kDim];
  /* e4m3 codes of 0, 1, 2, 3 and 4; the dead tail of the page holds NaN codes. */
  const uint8_t codes[kKeys] = {0x00, 0x38, 0x40, 0x44, 0x48};
  memset(k8, 0x7f, sizeof(k8));
  memset(v8, 0x7f, sizeof(v8));
  for (int j = 0; j < kKeys; ++j) {
    memset(k8 + j * kDim, 0x38, kDim);
    memset(v8 + j * kDim, codes[j], kDim);
  }
  for (int d = 0; d < kDim; ++d) q1[d] = 0.25f;
  float k_scale[1] = {3.0f}, v_scale[1] = {0.5f};
  int32_t table[1] = {0}, lens[1] = {kKeys}, starts[2] = {0, 1};
  rpa_attention_inputs in;
  memset(&in, 0, sizeof(in));
  in.q = tensor(q1, RPA_F32, 4, 1, 1, 1, kDim);
  in.k_cache = tensor(k8, RPA_FP8_E4M3, 4, 1, kPage, 1, kDim);
  in.v_cache = tensor(v8, RPA_FP8_E4M3, 4, 1, kPage, 1, kDim);
  in.block_table = tensor(table, RPA_I32, 2, 1, 1, 0, 0);
  in.seq_lens = tensor(lens, RPA_I32, 1, 1, 0, 0, 0);
  in.query_start_len = tensor(starts, RPA_I32, 1, 2, 0, 0, 0);
  in.k_scale = tensor(k_scale, RPA_F32, 1, 1, 0, 0, 0);
  in.v_scale = tensor(v_scale, RPA_F32, 1, 1, 0, 0, 0);
  rpa_attention_outputs outputs;
  memset(&outputs, 0, sizeof(outputs));
  outputs.out = tensor(out1, RPA_F32, 4, 1, 1, 1, kDim);
  CHECK(rpa_attention(&in, NULL, &outputs) == RPA_OK);
  for (int d = 0; d < kDim; ++d) CHECK(fabsf(out1[d] - 1.0f) < 1e-5f);

  /* Per layer through a plan: the layer brings its own scales. */
  rpa_plan* plan = NULL;
  CHECK(rpa_plan_create(&in, NULL, &plan) == RPA_OK);
  rpa_layer_inputs layer;
  memset(&layer, 0, sizeof(layer));
  layer.q = in.q;
  layer.k_cache = in.k_cache;
  layer.v_cache = in.v_cache;
  layer.k_scale = in.k_scale;
  float v_scale_2[1] = {2.0f};
  layer.v_scale = tensor(v_scale_2, RPA_F32, 1, 1, 0, 0, 0);
  CHECK(rpa_plan_run(plan, &layer, &outputs) == RPA_OK);
  for (int d = 0; d < kDim; ++d) CHECK(fabsf(out1[d] - 4.0f) < 1e-5f);
  /* A layer whose scale is not positive is refused, even through a plan. */
  v_scale_2[0] = 0.0f;
  CHECK(rpa_plan_run(plan, &layer, &outputs) == RPA_INVALID_ARGUMENT);
  CHECK(strstr(rpa_last_error_message(), "v_scale[0] = 0 must be finite and positive") != NULL);
  rpa_plan_destroy(plan);

  /* fp8 caches without their scales are refused. */
  in.k_scale = tensor(NULL, RPA_F32, 0, 0, 0, 0, 0);
  CHECK(rpa_attention(&in, NULL, &outputs) == RPA_INVALID_ARGUMENT);
  CHECK(strstr(rpa_last_error_message(), "k_scale is missing") != NULL);

  /* f32 tokens quantized into the fp8 page at its scales: key 5 gets
   * 3 / 3 = 1 (0x38) in K and 2 / 0.5 = 4 (0x48) in V; NULL scales refused. */
  static float k_tok[kDim], v_tok[kDim];
  for (int d = 0; d < kDim; ++d) k_tok[d] = 3.0f, v_tok[d] = 2.0f;
  int32_t slot[1] = {kKeys};
  const rpa_tensor kt = tensor(k_tok, RPA_F32, 3, 1, 1, kDim, 0);
  const rpa_tensor vt = tensor(v_tok, RPA_F32, 3, 1, 1, kDim, 0);
  const rpa_tensor st = tensor(slot, RPA_I32, 1, 1, 0, 0, 0);
  v_scale[0] = 0.5f;
  in.k_scale = tensor(k_scale, RPA_F32, 1, 1, 0, 0, 0);
  CHECK(rpa_write_kv(&kt, &vt, &st, &in.k_cache, &in.v_cache) == RPA_INVALID_ARGUMENT);
  CHECK(strstr(rpa_last_error_message(), "k_scale is missing: f32 tokens into an fp8_e4m3") != NULL);
  CHECK(k8[kKeys * kDim] == 0x7f);
  CHECK(rpa_write_kv_scaled(&kt, &vt, &st, &in.k_cache, &in.v_cache, &in.k_scale, &in.v_scale) ==
        RPA_OK);
  for (int d = 0; d < kDim; ++d) CHECK(k8[kKeys * kDim + d] == 0x38 && v8[kKeys * kDim + d] == 0x48);
  /* Six equal keys now: out = mean(0, 1, 2, 3, 4, 4) * v_scale = 14 / 6 * 0.5. */
  lens[0] = kKeys + 1;
  CHECK(rpa_attention(&in, NULL, &outputs) == RPA_OK);
  for (int d = 0; d < kDim; ++d) CHECK(fabsf(out1[d] - 14.0f / 12.0f) < 1e-5f);
}

int main(void) {
  fill_inputs();
  CHECK(strlen(rpa_version()) > 0);
  CHECK(strcmp(rpa_status_name(RPA_INVALID_ARGUMENT), "invalid argument") == 0);
  test_one_shot();
  test_plan_and_run();
  test_errors();
  test_fp8();
  test_merge_states();
  test_write_kv();
  if (failures != 0) {
    fprintf(stderr, "capi_test: %d check(s) failed\n", failures);
    return 1;
  }
  printf("capi_test: all checks passed\n");
  return 0;
}
