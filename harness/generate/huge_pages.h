// Memory for big K/V pools on transparent huge pages (Linux), so that a decode
// kernel streaming scattered pages does not lose its software prefetches.
//
// Why: a software prefetch that misses the TLB is dropped on the CPUs we
// measured (Zen 3). With 4 KiB pages a K/V pool of hundreds of MB is mostly
// outside the TLB's reach, so the decode kernel's prefetches of the next key
// block land only after a demand load has walked the page. On 2 MiB pages one
// TLB entry covers 128 cache pages of K/V (page 16, 8 kv heads, d128, bf16)
// and the prefetches land (docs/benchmarks.md, "Huge pages").
//
// The library never allocates a user's pool; this is for the pools rpa makes
// itself (the generator behind tests, the CLI and benchmarks). Elsewhere than
// Linux, or where the kernel says no, it is plain 2 MiB-aligned memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace rpa::gen {

// The x86-64 and common Arm64 huge page size.
inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

// Allocations of at least this size go on huge pages: below a few huge pages
// the rounding up wastes more than the TLB gains.
inline constexpr std::size_t kHugePageMinBytes = 2 * kHugePageBytes;

// `bytes` (rounded up to whole huge pages) aligned to kHugePageBytes, advised
// as huge-page memory before anything touches it; throws std::bad_alloc.
void* allocate_huge(std::size_t bytes);
void free_huge(void* p, std::size_t bytes);

// A std::allocator that puts allocations of at least kHugePageMinBytes on huge
// pages (allocate_huge) and the rest on the ordinary heap.
template <typename T>
struct HugePageAllocator {
  using value_type = T;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes >= kHugePageMinBytes) return static_cast<T*>(allocate_huge(bytes));
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    const std::size_t bytes = n * sizeof(T);
    if (bytes >= kHugePageMinBytes) return free_huge(p, bytes);
    std::allocator<T>().deallocate(p, n);
  }

  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }
};

// The byte buffer of a K/V pool.
using PoolBytes = std::vector<std::uint8_t, HugePageAllocator<std::uint8_t>>;

}  // namespace rpa::gen
