#include <gtest/gtest.h>
#include "rpa/dtype.h"
TEST(Smoke, Bf16RoundTrip) { EXPECT_EQ(rpa::bf16_to_f32(rpa::f32_to_bf16(1.0f)), 1.0f); }
