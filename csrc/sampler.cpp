// The sampling step (class Sampler). Shapes: vocab V (~151,936 for Qwen),
// processed in blocks of 32 tokens so that block b lines up with llguidance mask
// word b, and a per-block max (block_max_) lets truncation skip whole blocks.
//
// Cost per call (V = 151,936): copy + mask, block maxima and the softmax sums are
// streaming passes over V floats; greedy stops there. Plain temperature sampling
// adds one weight pass (none at T = 1: the softmax block sums are reused). top_k
// looks only at blocks whose max reaches the k-th largest block max. top_p first
// looks only at tokens with p >= 1e-4; only if those lack the top_p mass (a flat
// distribution) does it histogram the whole vocab (see sample_top_p).
//
// The vocab-wide passes are in sampler_kernels.{h,cpp}; this file is the per-call
// orchestration: validation, the processing order and the truncation strategies.
#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>

#include "sampler_kernels.h"

namespace qwen_edge {
namespace {

using namespace kernels;

// top_p prefilter: first look only at tokens with p >= kTopPPrefilter (at most
// 1 / kTopPPrefilter of them); fall back to every token if they lack the mass.
constexpr double kTopPPrefilter = 1e-4;

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string range_message(const char* what, int64_t id, std::size_t vocab) {
  return std::string(what) + " " + std::to_string(id) + " is out of range [0, " +
         std::to_string(vocab) + ")";
}

// Ranking used for truncation: higher logit first, ties -> lower id (deterministic).
// A lambda rather than a function so std::sort can inline it.
constexpr auto ranks_before = [](const Sampler::Candidate& a, const Sampler::Candidate& b) {
  return a.x > b.x || (a.x == b.x && a.id < b.id);
};

// 53 random bits -> [0, 1), by hand so the token stream for a seed does not depend
// on the standard library's uniform_real_distribution.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Max of the block maxima; NaN if any is NaN.
float max_of(const std::vector<float>& block_max) {
  int32_t m = order_key(kNegInf);
  for (float v : block_max) m = std::max(m, max_key(v));
  return from_order_key(m);
}

// True if any of the first `vocab` mask bits is set.
bool mask_allows_any(const uint32_t* mask, std::size_t words, std::size_t vocab) {
  for (std::size_t b = 0; b < words; ++b) {
    uint32_t word = mask[b];
    const std::size_t first = b * kBlock;
    if (vocab - first < kBlock) word &= (1u << (vocab - first)) - 1u;
    if (word != 0) return true;
  }
  return false;
}

void check_mask_words(std::size_t vocab, std::size_t mask_words) {
  const std::size_t needed = (vocab + kBlock - 1) / kBlock;
  if (mask_words > needed)
    throw std::invalid_argument("mask has " + std::to_string(mask_words) +
                                " words but a vocab of " + std::to_string(vocab) + " needs " +
                                std::to_string(needed) + " (ceil(vocab / 32))");
}

}  // namespace

void SamplerConfig::validate() const {
  auto fail = [](const std::string& msg) { throw std::invalid_argument(msg); };
  if (!(temperature >= 0.0) || !std::isfinite(temperature))
    fail("temperature must be a finite number >= 0 (0 = greedy), got " +
         format_number(temperature));
  if (top_k < 0) fail("top_k must be >= 0 (0 = off), got " + std::to_string(top_k));
  if (!(top_p > 0.0 && top_p <= 1.0))
    fail("top_p must be in (0, 1] (1 = off), got " + format_number(top_p));
  if (!(min_p >= 0.0 && min_p <= 1.0))
    fail("min_p must be in [0, 1] (0 = off), got " + format_number(min_p));
  if (!(repetition_penalty > 0.0) || !std::isfinite(repetition_penalty))
    fail("repetition_penalty must be a finite number > 0 (1 = off), got " +
         format_number(repetition_penalty));
  if (!std::isfinite(presence_penalty))
    fail("presence_penalty must be finite, got " + format_number(presence_penalty));
  if (!std::isfinite(frequency_penalty))
    fail("frequency_penalty must be finite, got " + format_number(frequency_penalty));
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0) fail("logit_bias token id must be >= 0, got " + std::to_string(id));
    if (std::isnan(bias) || bias == std::numeric_limits<double>::infinity())
      fail("logit_bias[" + std::to_string(id) + "] must be finite or -inf, got " +
           format_number(bias));
  }
}

void apply_token_mask(float* logits, std::size_t vocab, const uint32_t* mask,
                      std::size_t mask_words) {
  check_mask_words(vocab, mask_words);
  mask_in_place(logits, vocab, mask, mask_words);
}

SoftmaxStats log_softmax_stats(const float* logits, std::size_t vocab) {
  if (vocab == 0) throw std::invalid_argument("logits is empty");
  const float m = max_value(logits, vocab);  // NaN if any logit is NaN
  if (m == kNegInf) throw std::invalid_argument("no logit is finite (all are -inf or NaN)");
  if (m == kPosInf) throw std::invalid_argument("logits contain +inf");
  const ExpStats st = exp_stats(logits, vocab, m);
  if (!std::isfinite(st.z) || !std::isfinite(st.s))
    throw std::invalid_argument("logits contain NaN");
  const std::size_t index = static_cast<std::size_t>(
      std::find(logits, logits + vocab, m) - logits);
  const double log_z = std::log(st.z);
  return {static_cast<int32_t>(index), static_cast<float>(-log_z),
          static_cast<float>(std::max(0.0, log_z - st.s / st.z))};
}

Sampler::Sampler(SamplerConfig config) : config_(std::move(config)), rng_(config_.seed) {
  config_.validate();
}

void Sampler::process(const float* logits, std::size_t vocab, const int32_t* history,
                      std::size_t history_len, const uint32_t* mask, std::size_t mask_words) {
  if (vocab == 0) throw std::invalid_argument("logits is empty");
  if (vocab > static_cast<std::size_t>(std::numeric_limits<int32_t>::max()))
    throw std::invalid_argument("vocab is too large for int32 token ids");
  if (mask != nullptr) check_mask_words(vocab, mask_words);
  block_max_.resize((vocab + kBlock - 1) / kBlock);
  vocab_ = vocab;
  const float rep = static_cast<float>(config_.repetition_penalty);
  const float presence = static_cast<float>(config_.presence_penalty);
  const float frequency = static_cast<float>(config_.frequency_penalty);
  const bool penalize = (rep != 1.0f || presence != 0.0f || frequency != 0.0f) && history_len > 0;
  if (mask == nullptr && config_.logit_bias.empty() && !penalize) {
    // Nothing rewrites the logits: read the caller's buffer in place (no copy).
    block_max(logits, vocab, block_max_.data());
    x_ = logits;
    return;
  }
  logits_.resize(vocab);
  float* x = logits_.data();
  x_ = x;

  // 1. copy + mask + block maxima in one pass. The mask goes before bias and
  // penalties here, unlike the nominal order, to fuse it with the copy; the result
  // is the same: a masked -inf stays -inf under a finite bias, x * pen and x - pen.
  // Blocks that steps 2-3 change get their maxima recomputed.
  copy_block_max(logits, vocab, mask, mask_words, x, block_max_.data());
  auto refresh_block_max = [&](int32_t token) {
    const std::size_t b = static_cast<std::size_t>(token) / kBlock;
    const std::size_t first = b * kBlock;
    copy_block_max(x + first, std::min(kBlock, vocab - first), nullptr, 0, x + first,
                   &block_max_[b]);
  };

  // 2. logit_bias
  for (const auto& [id, bias] : config_.logit_bias) {
    if (static_cast<std::size_t>(id) >= vocab)
      throw std::out_of_range(range_message("logit_bias token id", id, vocab));
    x[id] += static_cast<float>(bias);
    refresh_block_max(id);
  }

  // 3. penalties over the distinct history tokens (history ignored if all are off).
  if (penalize) {
    for (std::size_t i = 0; i < history_len; ++i)
      if (history[i] < 0 || static_cast<std::size_t>(history[i]) >= vocab)
        throw std::out_of_range(range_message("history token", history[i], vocab));
    if (counts_.size() != vocab) counts_.assign(vocab, 0);  // stays all-zero between calls
    unique_.clear();
    for (std::size_t i = 0; i < history_len; ++i)
      if (counts_[history[i]]++ == 0) unique_.push_back(history[i]);
    for (int32_t t : unique_) {
      x[t] = apply_penalties(x[t], rep, frequency, presence, counts_[t]);
      counts_[t] = 0;
      refresh_block_max(t);
    }
  }
}

void Sampler::process_logits(const float* logits, std::size_t vocab, const int32_t* history,
                             std::size_t history_len, const uint32_t* mask,
                             std::size_t mask_words, float* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  process(logits, vocab, history, history_len, mask, mask_words);
  std::memcpy(out, x_, vocab * sizeof(float));
}

SampleResult Sampler::sample(const float* logits, std::size_t vocab, const int32_t* history,
                             std::size_t history_len, const uint32_t* mask,
                             std::size_t mask_words) {
  std::lock_guard<std::mutex> lock(mutex_);
  process(logits, vocab, history, history_len, mask, mask_words);
  const float* x = x_;

  const float m = max_of(block_max_);
  if (m == kNegInf) {
    if (mask != nullptr && !mask_allows_any(mask, mask_words, vocab))
      throw std::invalid_argument("grammar mask allows no token");
    throw std::invalid_argument(
        "no token has a finite logit after the mask, logit_bias and penalties");
  }
  if (m == kPosInf) throw std::invalid_argument("logits contain +inf");
  block_tmp_.resize(block_max_.size());
  // Plain sampling at T = 1 draws from the softmax itself: keep its block sums.
  const bool reuse_sums = !config_.greedy() && config_.top_k == 0 && config_.top_p >= 1.0 &&
                          config_.temperature == 1.0 && config_.min_p == 0.0;
  const ExpStats st = reuse_sums ? exp_stats_blocks(x, vocab, m, block_tmp_.data())
                                 : exp_stats(x, vocab, m);
  if (!std::isfinite(st.z) || !std::isfinite(st.s))
    throw std::invalid_argument("logits contain NaN");

  int32_t token;
  if (config_.greedy()) {
    // First block holding the max, then the first element equal to it.
    const std::size_t b = static_cast<std::size_t>(
        std::find(block_max_.begin(), block_max_.end(), m) - block_max_.begin());
    token = static_cast<int32_t>(std::find(x + b * kBlock, x + vocab, m) - x);
  } else if (config_.top_k > 0) {
    token = sample_top_k(m);
  } else if (config_.top_p < 1.0) {
    token = sample_top_p(m, st.z);
  } else {
    token = sample_full(m, st.z);
  }
  const double log_z = std::log(st.z);
  return {token, static_cast<float>(static_cast<double>(x[token]) - m - log_z),
          static_cast<float>(std::max(0.0, log_z - st.s / st.z))};
}

// Draws from cand_[0, n) with probability proportional to w among those with
// w >= min_p (relative to the max token, whose w is 1).
int32_t Sampler::draw(std::size_t n) {
  const uint32_t min_w_bits = float_to_bits(static_cast<float>(config_.min_p));
  double total = 0.0;
  for (std::size_t j = 0; j < n; ++j) total += keep_at_least(cand_[j].w, min_w_bits);
  const double target = uniform01(rng_) * total;
  double cum = 0.0;
  int32_t last = cand_[0].id;
  for (std::size_t j = 0; j < n; ++j) {
    const float w = keep_at_least(cand_[j].w, min_w_bits);
    if (w == 0.0f) continue;
    cum += w;
    last = cand_[j].id;
    if (cum > target) return last;
  }
  return last;  // only reached through rounding in the last place
}

// temperature + top_k (+ top_p, min_p).
int32_t Sampler::sample_top_k(float max_logit) {
  const float inv_t = static_cast<float>(1.0 / config_.temperature);
  const std::size_t k = static_cast<std::size_t>(config_.top_k);
  const std::size_t blocks = block_max_.size();
  const float* x = x_;
  const std::size_t vocab = vocab_;

  // The k-th largest block max is a safe cut: the k blocks at or above it each
  // hold a token >= it, so at least k tokens pass, including the whole top k.
  float threshold = kNegInf;
  if (k <= blocks) {
    block_tmp_.assign(block_max_.begin(), block_max_.end());
    std::nth_element(block_tmp_.begin(), block_tmp_.begin() + (k - 1), block_tmp_.end(),
                     std::greater<float>());
    threshold = block_tmp_[k - 1];
  }
  cand_.clear();
  for (std::size_t b = 0; b < blocks; ++b) {
    if (!(block_max_[b] >= threshold) || block_max_[b] == kNegInf) continue;
    const std::size_t end = std::min(vocab, (b + 1) * kBlock);
    for (std::size_t i = b * kBlock; i < end; ++i)
      if (x[i] >= threshold && x[i] > kNegInf)
        cand_.push_back({x[i], 0.0f, static_cast<int32_t>(i)});
  }
  if (cand_.size() > k) {
    std::nth_element(cand_.begin(), cand_.begin() + k, cand_.end(), ranks_before);
    cand_.resize(k);
  }
  for (Candidate& c : cand_) c.w = exp_nonpositive((c.x - max_logit) * inv_t);
  if (config_.top_p >= 1.0) return draw(cand_.size());

  // Nucleus within the top k: ranked tokens while the mass ranked strictly before
  // them is < top_p * (top-k mass), so the token crossing top_p is kept (HF/vLLM).
  std::sort(cand_.begin(), cand_.end(), ranks_before);
  double mass = 0.0;
  for (const Candidate& c : cand_) mass += c.w;
  const double target = config_.top_p * mass;
  std::size_t n = 0;
  for (double before = 0.0; n < cand_.size() && before < target; ++n) before += cand_[n].w;
  return draw(n);
}

// Over the finite tokens with x >= threshold (blocks whose max is below it are
// skipped): stores each token's w and bucket in weights_ / buckets_ and sums, in
// vocab order, bucket_mass_[q] (w) and bucket_kept_[q] (w >= min_p). Returns the
// total mass.
double Sampler::bucket_histogram(float threshold, float max_logit, float inv_t,
                                 uint32_t min_w_bits) {
  const std::size_t vocab = vocab_;
  const std::size_t blocks = block_max_.size();
  bucket_mass_.assign(kBuckets + 1, 0.0);  // + the kExcluded slot
  bucket_kept_.assign(kBuckets + 1, 0.0);
  weights_.resize(vocab);
  buckets_.resize(vocab);
  region_detail(x_, vocab, block_max_.data(), threshold, max_logit, inv_t,
                weights_.data(), buckets_.data());
  for (std::size_t b = 0; b < blocks; ++b) {
    if (!(block_max_[b] >= threshold) || block_max_[b] == kNegInf) continue;
    const std::size_t end = std::min(vocab, (b + 1) * kBlock);
    for (std::size_t i = b * kBlock; i < end; ++i) bucket_mass_[buckets_[i]] += weights_[i];
    if (min_w_bits != 0)
      for (std::size_t i = b * kBlock; i < end; ++i)
        bucket_kept_[buckets_[i]] += keep_at_least(weights_[i], min_w_bits);
  }
  if (min_w_bits == 0) bucket_kept_ = bucket_mass_;
  double total = 0.0;
  for (std::size_t q = 0; q < kBuckets; ++q) total += bucket_mass_[q];
  return total;
}

// temperature + top_p (+ min_p), no top_k. The nucleus is a prefix of the ranking:
// tokens while the mass ranked strictly before them is < top_p * Z. Rather than
// sort, bucket the tokens by rank (bucket_histogram), find the bucket where the
// cumulative mass crosses top_p * Z, and sort only that bucket. Buckets before it
// are wholly in the nucleus and are drawn from via their kept mass.
int32_t Sampler::sample_top_p(float max_logit, double z1) {
  const double temperature = config_.temperature;
  const float inv_t = static_cast<float>(1.0 / temperature);
  const uint32_t min_w_bits = float_to_bits(static_cast<float>(config_.min_p));
  const float* x = x_;
  const std::size_t vocab = vocab_;

  double z_t = z1;  // total weight at temperature T (the max token weighs 1)
  if (inv_t != 1.0f) z_t = block_weights(x, vocab, max_logit, inv_t, 0.0f, block_tmp_.data());
  // Any {x >= threshold} is a prefix of the ranking; if it holds the nucleus mass
  // it holds the nucleus. Try the tokens with p >= kTopPPrefilter (few blocks reach
  // them), else every token.
  float threshold =
      static_cast<float>(max_logit + temperature * std::log(kTopPPrefilter * z_t));
  double target = config_.top_p * z_t;
  if (bucket_histogram(threshold, max_logit, inv_t, min_w_bits) < target) {
    threshold = kNegInf;
    target = config_.top_p * bucket_histogram(threshold, max_logit, inv_t, min_w_bits);
  }
  uint32_t cut = 0;
  double before = 0.0;  // mass of buckets [0, cut)
  for (; cut + 1 < kBuckets && before + bucket_mass_[cut] < target; ++cut)
    before += bucket_mass_[cut];

  // Visits the tokens of bucket q in vocab (= histogram) order until fn returns
  // true, skipping blocks that rank wholly below q or that hold no token of q.
  auto for_each_in_bucket = [&](uint32_t q, auto&& fn) {
    const uint16_t* key = buckets_.data();
    for (std::size_t b = 0; b < block_max_.size(); ++b) {
      if (!(block_max_[b] >= threshold) || block_max_[b] == kNegInf ||
          bucket_of(block_max_[b], max_logit, inv_t) > q)
        continue;
      const std::size_t first = b * kBlock;
      const std::size_t end = std::min(vocab, first + kBlock);
      if (end - first == kBlock) {
        uint32_t hits = 0;  // branch-free any(), vectorizes
        for (std::size_t l = 0; l < kBlock; ++l) hits |= key[first + l] == q;
        if (hits == 0) continue;
      }
      for (std::size_t i = first; i < end; ++i)
        if (key[i] == q && fn(static_cast<int32_t>(i), weights_[i])) return;
    }
  };

  // The cut bucket's tokens in rank order; the nucleus takes cand_[0, n).
  cand_.clear();
  for_each_in_bucket(cut, [&](int32_t id, float w) {
    cand_.push_back({x[id], w, id});
    return false;
  });
  std::sort(cand_.begin(), cand_.end(), ranks_before);
  std::size_t n = 0;
  for (double cum = before; n < cand_.size() && cum < target; ++n) cum += cand_[n].w;

  // Draw over buckets [0, cut) (kept mass) then cand_[0, n) (kept weights).
  double head = 0.0;
  for (uint32_t q = 0; q < cut; ++q) head += bucket_kept_[q];
  double tail = 0.0;
  for (std::size_t j = 0; j < n; ++j) tail += keep_at_least(cand_[j].w, min_w_bits);
  double u = uniform01(rng_) * (head + tail);
  if (u >= head && tail > 0.0) {
    const double t = u - head;
    double cum = 0.0;
    int32_t last = -1;
    for (std::size_t j = 0; j < n; ++j) {
      const float w = keep_at_least(cand_[j].w, min_w_bits);
      if (w == 0.0f) continue;
      cum += w;
      last = cand_[j].id;
      if (cum > t) break;
    }
    return last;
  }
  // The bucket holding u (the last one with kept mass if rounding leaves u beyond
  // them), then the token inside it.
  uint32_t q = cut;
  double below = 0.0;  // kept mass of the buckets before q
  double acc = 0.0;
  for (uint32_t r = 0; r < cut; ++r) {
    if (bucket_kept_[r] == 0.0) continue;
    q = r;
    below = acc;
    acc += bucket_kept_[r];
    if (u < acc) break;
  }
  u -= below;
  int32_t token = -1;
  double cum = 0.0;  // same additions in the same order as bucket_kept_[q]
  for_each_in_bucket(q, [&](int32_t id, float w) {
    const float kept = keep_at_least(w, min_w_bits);
    if (kept == 0.0f) return false;
    cum += kept;
    token = id;
    return cum > u;
  });
  return token;
}

// temperature (+ min_p) over the whole vocab: per-block weight sums, then pick the
// block by inverse CDF and the token inside it. At T = 1 (no min_p) block_tmp_
// already holds the block sums, from exp_stats_blocks, and z1 is their total.
int32_t Sampler::sample_full(float max_logit, double z1) {
  const float inv_t = static_cast<float>(1.0 / config_.temperature);
  const float min_w = static_cast<float>(config_.min_p);
  const uint32_t min_w_bits = float_to_bits(min_w);
  const float* x = x_;
  const std::size_t vocab = vocab_;
  const std::size_t blocks = block_max_.size();
  const double total = (config_.temperature == 1.0 && min_w == 0.0f)
                           ? z1
                           : block_weights(x, vocab, max_logit, inv_t, min_w, block_tmp_.data());
  double target = uniform01(rng_) * total;

  std::size_t b = blocks;
  for (std::size_t q = 0; q < blocks; ++q) {
    if (block_tmp_[q] == 0.0f) continue;
    b = q;  // last block with mass, in case rounding leaves target unreached
    if (target < block_tmp_[q]) break;
    target -= block_tmp_[q];
  }
  const std::size_t first = b * kBlock;
  const std::size_t len = std::min(kBlock, vocab - first);
  float w[kBlock];
  uint16_t key[kBlock];  // unused
  // The same dispatched kernel as block_weights, so the weights match bit for bit.
  region_detail(x + first, len, &block_max_[b], kNegInf, max_logit, inv_t, w, key);
  int32_t last = -1;
  double cum = 0.0;
  for (std::size_t l = 0; l < len; ++l) {
    const float kept = keep_at_least(w[l], min_w_bits);
    if (kept == 0.0f) continue;
    cum += kept;
    last = static_cast<int32_t>(first + l);
    if (cum > target) break;
  }
  return last;
}

}  // namespace qwen_edge
