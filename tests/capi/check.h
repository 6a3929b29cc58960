/* CHECK for the C API tests: counts a failure and says where, then goes on,
 * so that one run reports every broken promise; main returns `failures`. */
#ifndef RPA_TESTS_CAPI_CHECK_H_
#define RPA_TESTS_CAPI_CHECK_H_

#include <stdio.h>

static int failures = 0;
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

#endif
