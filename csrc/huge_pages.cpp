#include "huge_pages.h"

#include <cerrno>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace qwen_edge {

namespace {

#if defined(__linux__)
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25  // Linux 6.1; older headers lack the name
#endif

constexpr const char* kThpDir = "/sys/kernel/mm/transparent_hugepage/";

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}
#endif

}  // namespace

std::size_t huge_page_size() {
#if defined(__linux__)
  // "always [madvise] never": the bracketed word is the active mode.
  if (read_line(std::string(kThpDir) + "enabled").find("[never]") != std::string::npos) {
    return 0;
  }
  const std::string size = read_line(std::string(kThpDir) + "hpage_pmd_size");
  if (size.empty()) return 0;
  try {
    return static_cast<std::size_t>(std::stoull(size));
  } catch (const std::exception&) {
    return 0;
  }
#else
  return 0;
#endif
}

std::vector<uintptr_t> resident_huge_chunks() {
  std::vector<uintptr_t> chunks;
#if defined(__linux__)
  const std::size_t huge = huge_page_size();
  const long page = sysconf(_SC_PAGESIZE);
  if (huge == 0 || page <= 0 || huge % static_cast<std::size_t>(page) != 0) return chunks;
  std::vector<unsigned char> resident(huge / static_cast<std::size_t>(page));
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    // start-end perms offset dev inode [path]
    std::istringstream fields(line);
    std::string range, perms, offset, dev, path;
    unsigned long inode = 0;
    fields >> range >> perms >> offset >> dev >> inode;
    std::getline(fields >> std::ws, path);
    const bool anonymous = inode == 0 && (path.empty() || path == "[heap]" ||
                                          path.rfind("[anon:", 0) == 0);
    if (!anonymous || perms.size() < 4 || perms[0] != 'r' || perms[1] != 'w' ||
        perms[3] != 'p') {
      continue;
    }
    const std::size_t dash = range.find('-');
    if (dash == std::string::npos) continue;
    uintptr_t lo = 0, hi = 0;
    try {
      lo = std::stoull(range.substr(0, dash), nullptr, 16);
      hi = std::stoull(range.substr(dash + 1), nullptr, 16);
    } catch (const std::exception&) {
      continue;  // not a mapping line: an optimization is never worth a failed load
    }
    for (uintptr_t a = (lo + huge - 1) / huge * huge; a + huge <= hi; a += huge) {
      if (mincore(reinterpret_cast<void*>(a), huge, resident.data()) != 0) continue;
      bool all = true;
      for (unsigned char r : resident) all = all && (r & 1);
      if (all) chunks.push_back(a);
    }
  }
#endif
  return chunks;
}

namespace {
long this_process() {
#if defined(__linux__)
  return static_cast<long>(getpid());
#else
  return 0;
#endif
}
}  // namespace

HugePageCollapse::HugePageCollapse(std::vector<uintptr_t> chunks)
    : state_(std::make_shared<State>()) {
  state_->chunk = huge_page_size();
  state_->owner = this_process();
  if (chunks.empty() || state_->chunk == 0) {
    state_->done = true;
    return;
  }
  state_->chunks = std::move(chunks);
  std::thread([state = state_] { run(*state); }).detach();
}

HugePageCollapse::~HugePageCollapse() { state_->stop = true; }

void HugePageCollapse::run(State& state) {
#if defined(__linux__)
  for (uintptr_t a : state.chunks) {
    if (state.stop) break;
    if (madvise(reinterpret_cast<void*>(a), state.chunk, MADV_COLLAPSE) == 0) {
      state.collapsed += state.chunk;
    } else if (errno == EINVAL && state.collapsed == 0) {
      state.failed += state.chunks.size();  // no MADV_COLLAPSE before Linux 6.1
      break;
    } else {
      ++state.failed;  // EAGAIN / ENOMEM: no free huge page right now; ENOMEM: unmapped
    }
  }
#endif
  std::lock_guard<std::mutex> lock(state.mutex);
  state.done = true;
  state.finished.notify_all();
}

std::size_t HugePageCollapse::wait() {
  if (this_process() == state_->owner) {
    std::unique_lock<std::mutex> lock(state_->mutex);
    state_->finished.wait(lock, [this] { return state_->done.load(); });
  }
  return state_->collapsed.load();
}

}  // namespace qwen_edge
