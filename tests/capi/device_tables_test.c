/* The device tables through the C API, from plain C: a decode row and a
 * chunked prefill (pages out of order) exported with small chunks, checked
 * field by field against the block table; the static bounds; the error
 * paths. */
#include <rpa/rpa.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

enum { kKvHeads = 2, kGroup = 2, kDim = 64, kPage = 16, kPages = 6, kSlots = 3, kMaxPages = 3 };
enum { kTokens = 6 };

static float q[kTokens * kKvHeads * kGroup * kDim];
static float k_cache[kPages * kPage * kKvHeads * kDim], v_cache[kPages * kPage * kKvHeads * kDim];
/* Slot 0: decode on 20 keys (pages 4, 1). Slot 1: inactive. Slot 2: 4 rows
 * on 30 keys of context, 34 keys (pages 5, 0, 2). */
static int32_t block_table[kSlots * kMaxPages] = {4, 1, -1, -1, -1, -1, 5, 0, 2};
static int32_t seq_lens[kSlots] = {20, 0, 34};
static int32_t query_start_len[kSlots + 1] = {0, 1, 1, 5};

static rpa_tensor tensor(void* data, rpa_dtype dtype, int rank, const int64_t* dims) {
  rpa_tensor t;
  memset(&t, 0, sizeof(t));
  t.data = data;
  t.dtype = dtype;
  t.rank = rank;
  for (int d = 0; d < rank; ++d) t.shape[d] = dims[d];
  return t;
}

static rpa_attention_inputs make_inputs(void) {
  static const int64_t q_dims[4] = {kTokens, kKvHeads, kGroup, kDim};
  static const int64_t kv_dims[4] = {kPages, kPage, kKvHeads, kDim};
  static const int64_t table_dims[2] = {kSlots, kMaxPages};
  static const int64_t lens_dims[1] = {kSlots};
  static const int64_t starts_dims[1] = {kSlots + 1};
  rpa_attention_inputs in;
  memset(&in, 0, sizeof(in));
  in.q = tensor(q, RPA_F32, 4, q_dims);
  in.k_cache = tensor(k_cache, RPA_F32, 4, kv_dims);
  in.v_cache = tensor(v_cache, RPA_F32, 4, kv_dims);
  in.block_table = tensor(block_table, RPA_I32, 2, table_dims);
  in.seq_lens = tensor(seq_lens, RPA_I32, 1, lens_dims);
  in.query_start_len = tensor(query_start_len, RPA_I32, 1, starts_dims);
  return in;
}

static void test_tables(void) {
  const rpa_attention_inputs in = make_inputs();
  rpa_device_tables_config config;
  memset(&config, 0, sizeof(config));
  config.kv_chunk_tokens = 16;
  config.split_tokens = 16;
  rpa_device_tables* tables = NULL;
  CHECK(rpa_device_tables_create(&in, NULL, &config, &tables) == RPA_OK);
  if (tables == NULL) return;
  rpa_device_tables_info info;
  CHECK(rpa_device_tables_get_info(tables, &info) == RPA_OK);
  CHECK(info.pages_per_row == 1 && info.row_width == info.row_fields + 1);
  CHECK(info.config.num_cores == 2 && info.config.kv_heads_per_row == kKvHeads);
  CHECK(info.config.q_tile_rows == 128 / kGroup);
  /* Decode: keys [0,16), [16,20). Prefill tile: [0,16), [16,32), [32,34). */
  CHECK(info.num_rows == 5);
  CHECK(info.num_merges == 5 && info.num_partial_rows == 2 + 3 * 4);
  CHECK(info.num_rows <= info.max_rows && info.rows_per_core <= info.max_rows);
  CHECK(info.num_merges <= info.max_merges && info.num_partial_rows <= info.max_partial_rows);

  const int32_t* rows = NULL;
  int64_t count = 0;
  CHECK(rpa_device_tables_get(tables, RPA_TABLE_ROWS, &rows, &count) == RPA_OK);
  CHECK(count == info.num_rows * info.row_width);
  for (int64_t i = 0; i < info.num_rows; ++i) {
    const int32_t* r = rows + i * info.row_width;
    /* slot, kv_head, q_row, q_rows, q_pos, seq_len, kv_begin, kv_end, kv_base, ... */
    const int32_t slot = r[0], kv_begin = r[6];
    CHECK(r[1] == 0);
    CHECK(r[info.row_fields] == block_table[slot * kMaxPages + kv_begin / kPage]);
  }
  const int32_t* core_rows = NULL;
  CHECK(rpa_device_tables_get(tables, RPA_TABLE_CORE_ROWS, &core_rows, &count) == RPA_OK);
  CHECK(count == 2 * info.rows_per_core * info.row_width);
  CHECK(info.rows_per_core == 3); /* five one-row chains on two cores */
  CHECK(rpa_device_tables_get(tables, (rpa_device_table)7, &rows, &count) ==
        RPA_INVALID_ARGUMENT);
  CHECK(strstr(rpa_last_error_message(), "which = 7") != NULL);
  rpa_device_tables_destroy(tables);
}

static void test_errors(void) {
  const rpa_attention_inputs in = make_inputs();
  rpa_device_tables_config config;
  memset(&config, 0, sizeof(config));
  config.kv_heads_per_row = 3;
  rpa_device_tables* tables = (rpa_device_tables*)&config;
  CHECK(rpa_device_tables_create(&in, NULL, &config, &tables) == RPA_INVALID_ARGUMENT);
  CHECK(tables == NULL);
  CHECK(strstr(rpa_last_error_message(), "kv_heads_per_row = 3") != NULL);
  CHECK(rpa_device_tables_create(NULL, NULL, NULL, &tables) == RPA_INVALID_ARGUMENT);
  CHECK(rpa_device_tables_get_info(NULL, NULL) == RPA_INVALID_ARGUMENT);
  rpa_device_tables_destroy(NULL);
}

int main(void) {
  test_tables();
  test_errors();
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("device tables C API: ok\n");
  return 0;
}
