// Prompt-lookup (n-gram) drafting for speculative decoding: propose the tokens that
// followed an earlier occurrence of the sequence's last few tokens, then keep the
// longest prefix the target model agrees with. Pure C++17, no Python.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace qwen_edge {

// Finds the most recent earlier position where the last m tokens of tokens[0, n)
// occur again, for the largest m in [min_ngram, max_ngram] that has a match, and
// returns up to k tokens that followed it (fewer if the sequence ends first).
// Matches may overlap the suffix itself (repeating patterns extend naturally).
// Returns an empty vector when nothing matches.
// Throws std::invalid_argument unless 1 <= min_ngram <= max_ngram and k >= 0.
std::vector<int32_t> ngram_draft(const int32_t* tokens, std::size_t n, int64_t max_ngram,
                                 int64_t min_ngram, int64_t k);

// Number of leading draft tokens equal to the verify pass's greedy tokens.
// target[i] is the model's greedy token after the context + draft[0, i), so target
// holds draft_len + 1 tokens. With a = accept_draft(...), the caller appends
// target[0, a + 1) (a accepted draft tokens, then the model's own next token: the
// correction, or the bonus token if a == draft_len) and trims the KV cache back to
// context + a + 1 positions.
// Throws std::invalid_argument unless target_len == draft_len + 1.
std::size_t accept_draft(const int32_t* draft, std::size_t draft_len, const int32_t* target,
                         std::size_t target_len);

}  // namespace qwen_edge
