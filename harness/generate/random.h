// The generator's PRNG: xoshiro256** seeded through splitmix64, with integer
// and real draws written out by hand. std::uniform_*_distribution is avoided on
// purpose: its output is implementation-defined, and a batch must be the same
// bytes on every platform and standard library for a given seed.
#pragma once

#include <cstdint>

namespace rpa::gen {

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& word : s_) word = splitmix64(seed);
  }

  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [lo, hi] (inclusive). The multiply-shift maps 64 random bits
  // onto the range; its bias of at most range / 2^64 is irrelevant here.
  int64_t uniform_int(int64_t lo, int64_t hi) {
    const uint64_t range = static_cast<uint64_t>(hi - lo) + 1;
    const uint64_t pick =
        static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * range) >> 64);
    return lo + static_cast<int64_t>(pick);
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform01() { return static_cast<double>(next() >> 11) * 0x1p-53; }

  bool bernoulli(double p) { return uniform01() < p; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  static uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

  uint64_t s_[4];
};

}  // namespace rpa::gen
