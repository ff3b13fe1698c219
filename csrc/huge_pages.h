// Transparent huge pages for memory that is already resident: an int4 decoder streams
// every weight once per token, and on 4 KiB pages that is one TLB miss per 4 KiB (~80,000
// per token for a 0.5B model). Most distributions ship THP in "madvise" mode, so memory
// that onnxruntime allocates for its prepacked weights stays on small pages unless asked.
// These functions find the fully resident, huge-page-aligned chunks of the process's
// private anonymous memory and collapse them in place (MADV_COLLAPSE, Linux >= 6.1):
// contents, addresses and resident size are unchanged; only the page tables change.
// Elsewhere (other kernels, other systems, THP "never") they do nothing.
// Pure C++17, no Python.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace qwen_edge {

// The PMD-level transparent huge page size in bytes (2 MiB on x86-64 and 4 KiB-page
// arm64, 32 MiB with 16 KiB pages), or 0 when THP is unavailable or set to "never".
std::size_t huge_page_size();

// Start addresses of the chunks of huge_page_size() bytes, aligned to that size, that lie
// inside private anonymous read-write mappings and whose every base page is resident
// (mincore). Chunks with an untouched page are left out, so collapsing the result never
// grows the resident set. Empty when huge_page_size() is 0.
std::vector<uintptr_t> resident_huge_chunks();

// Collapses the given chunks into huge pages on a detached background thread, one madvise
// per chunk. Chunks that were unmapped meanwhile are skipped (madvise fails harmlessly); a
// kernel without MADV_COLLAPSE (EINVAL on the first chunk) ends the run at once. The
// destructor only asks the thread to stop after its current chunk (the thread owns a share
// of the state), so destroying it never blocks, and a process forked meanwhile, which has
// no such thread, never waits for it.
class HugePageCollapse {
 public:
  explicit HugePageCollapse(std::vector<uintptr_t> chunks);
  ~HugePageCollapse();
  HugePageCollapse(const HugePageCollapse&) = delete;
  HugePageCollapse& operator=(const HugePageCollapse&) = delete;

  // Blocks until every chunk was tried (in a forked child: returns at once); returns the
  // bytes now on huge pages.
  std::size_t wait();
  bool done() const { return state_->done.load(); }
  std::size_t requested_bytes() const { return state_->chunks.size() * state_->chunk; }
  std::size_t failed_chunks() const { return state_->failed.load(); }

 private:
  struct State {
    std::vector<uintptr_t> chunks;
    std::size_t chunk = 0;
    long owner = 0;  // the pid that started the thread
    std::atomic<bool> stop{false};
    std::atomic<bool> done{false};
    std::atomic<std::size_t> collapsed{0};
    std::atomic<std::size_t> failed{0};
    std::mutex mutex;
    std::condition_variable finished;
  };
  static void run(State& state);

  std::shared_ptr<State> state_;
};

}  // namespace qwen_edge
