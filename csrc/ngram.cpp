#include "ngram.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace qwen_edge {

std::vector<int32_t> ngram_draft(const int32_t* tokens, std::size_t n, int64_t max_ngram,
                                 int64_t min_ngram, int64_t k) {
  if (min_ngram < 1)
    throw std::invalid_argument("min_ngram must be >= 1, got " + std::to_string(min_ngram));
  if (max_ngram < min_ngram)
    throw std::invalid_argument("max_ngram must be >= min_ngram (" +
                                std::to_string(min_ngram) + "), got " +
                                std::to_string(max_ngram));
  if (k < 0) throw std::invalid_argument("k must be >= 0, got " + std::to_string(k));
  if (k == 0 || n < 2) return {};

  // One backward scan over candidate match ends e (the continuation starts at
  // e + 1 <= n - 1). len = common suffix of tokens[.., e] and tokens[.., n - 1],
  // capped at max_ngram. The longest len wins; among equals the first found, i.e.
  // the most recent. This equals "for m = max_ngram down to min_ngram, take the
  // most recent match of the last m tokens".
  const std::size_t cap = static_cast<std::size_t>(std::min<int64_t>(
      max_ngram, static_cast<int64_t>(n - 1)));
  const int32_t* last = tokens + (n - 1);
  std::size_t best_len = 0;
  std::size_t best_end = 0;
  for (std::size_t e = n - 1; e-- > 0;) {
    if (tokens[e] != *last) continue;
    std::size_t len = 1;
    const std::size_t limit = std::min(cap, e + 1);
    while (len < limit && tokens[e - len] == last[-static_cast<std::ptrdiff_t>(len)]) ++len;
    if (len > best_len) {
      best_len = len;
      best_end = e;
      if (len == cap) break;
    }
  }
  if (best_len < static_cast<std::size_t>(min_ngram)) return {};
  const std::size_t begin = best_end + 1;
  const std::size_t end = std::min(n, begin + static_cast<std::size_t>(k));
  return std::vector<int32_t>(tokens + begin, tokens + end);
}

std::size_t accept_draft(const int32_t* draft, std::size_t draft_len, const int32_t* target,
                         std::size_t target_len) {
  if (target_len != draft_len + 1)
    throw std::invalid_argument(
        "target must hold len(draft) + 1 tokens (the verify pass's greedy token at each "
        "draft position plus one), got len(draft)=" + std::to_string(draft_len) +
        ", len(target)=" + std::to_string(target_len));
  std::size_t a = 0;
  while (a < draft_len && draft[a] == target[a]) ++a;
  return a;
}

}  // namespace qwen_edge
