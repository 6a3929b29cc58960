#include "generate/huge_pages.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace rpa::gen {
namespace {

std::size_t round_up(std::size_t bytes) {
  return (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
}

}  // namespace

void* allocate_huge(std::size_t bytes) {
  const std::size_t size = round_up(bytes);
  void* p = ::operator new (size, std::align_val_t{kHugePageBytes});
#if defined(MADV_HUGEPAGE)
  // With /sys/kernel/mm/transparent_hugepage/enabled = madvise (the common
  // default) only advised ranges get huge pages; with `always` this is a no-op
  // and with `never` it fails harmlessly. Either way the memory is usable.
  static_cast<void>(madvise(p, size, MADV_HUGEPAGE));
#endif
  return p;
}

void free_huge(void* p, std::size_t bytes) {
  ::operator delete (p, round_up(bytes), std::align_val_t{kHugePageBytes});
}

}  // namespace rpa::gen
