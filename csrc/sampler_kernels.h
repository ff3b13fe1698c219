// The sampler's kernels: streaming passes over the vocab (mask, block maxima, softmax
// sums for logprob and entropy, temperature / min_p weights, top_p rank buckets) and the
// scalar math they share with the sampler (exp, order keys, penalties). Sampler
// (sampler.cpp) orchestrates them per call; the split keeps the vectorized, ISA-dispatched
// code apart from the control flow.
//
// Shapes: vocab V (~151,936 for Qwen), processed in blocks of kBlock = 32 tokens so that
// block b lines up with llguidance mask word b. Pure C++17, no Python; internal to the
// core (not bound).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "sampler.h"

#if defined(__GNUC__) || defined(__clang__)
#define QWEN_EDGE_INLINE inline __attribute__((always_inline))
#else
#define QWEN_EDGE_INLINE inline
#endif

namespace qwen_edge::kernels {

inline constexpr std::size_t kBlock = kMaskWordBits;  // logits block b <-> mask word b
inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();
inline constexpr float kPosInf = std::numeric_limits<float>::infinity();
inline constexpr float kExpFloor = -87.0f;  // exp(x < kExpFloor) is taken as 0 (< 2^-125)
// top_p buckets over y = (max - x) / T: 32 buckets per halving of the weight,
// covering the weights down to exp(-88), plus one overflow bucket.
inline constexpr float kBucketScale = 32.0f / 0.693147181f;
inline constexpr std::size_t kBuckets = 4064 + 1;
inline constexpr uint16_t kExcluded = kBuckets;  // bucket slot for tokens outside the region
inline constexpr uint32_t kExpFloorBits = 0xC2AE0000u;  // bit pattern of kExpFloor (-87.0f)

QWEN_EDGE_INLINE float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

QWEN_EDGE_INLINE uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Signed-int key with the same order as the float (for non-NaN); self-inverse.
QWEN_EDGE_INLINE int32_t order_key(float f) {
  int32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b ^ ((b >> 31) & 0x7FFFFFFF);
}

// order_key, except that every NaN maps to the largest key (it wins any max).
QWEN_EDGE_INLINE int32_t max_key(float f) {
  int32_t b;
  std::memcpy(&b, &f, sizeof b);
  return (b & 0x7FFFFFFF) > 0x7F800000 ? std::numeric_limits<int32_t>::max() : order_key(f);
}

QWEN_EDGE_INLINE float from_order_key(int32_t k) {
  const int32_t b = k ^ ((k >> 31) & 0x7FFFFFFF);
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// All-ones if x >= kExpFloor, for x <= 0 (negative floats order as their unsigned
// bit patterns, reversed). NaN logits are rejected before any exp is taken.
QWEN_EDGE_INLINE uint32_t above_floor(float x) {
  return float_to_bits(x) <= kExpFloorBits ? ~0u : 0u;
}

// max(x, kExpFloor) for x <= 0: keeps 0 * (x - max) finite when x = -inf.
QWEN_EDGE_INLINE float clamp_to_floor(float x) {
  const uint32_t keep = above_floor(x);
  return bits_to_float((float_to_bits(x) & keep) | (kExpFloorBits & ~keep));
}

// exp(x) for x <= 0, the only range we need (x - max). Cephes expf: x = n ln2 + r
// with |r| <= ln2/2, a degree-6 polynomial in r, times 2^n assembled in the exponent
// bits; max relative error ~1e-7. Branch-free so that loops calling it vectorize
// (libm's expf does not without -ffast-math). Returns 0 for x < kExpFloor and -inf.
QWEN_EDGE_INLINE float exp_nonpositive(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kRound = 12582912.0f;        // 1.5 * 2^23: y + kRound rounds y to an int
  constexpr uint32_t kRoundBits = 0x4B400000u;  // bit pattern of kRound
  const uint32_t keep = above_floor(x);
  const float xc = clamp_to_floor(x);
  const float t = xc * kLog2e + kRound;
  const float n = t - kRound;                          // round(x / ln2), exact
  const uint32_t ni = float_to_bits(t) - kRoundBits;   // the same n as an int
  float r = xc - n * 0.693359375f;                     // ln2 split in two parts
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float y = p * bits_to_float((ni + 127u) << 23);
  return bits_to_float(float_to_bits(y) & keep);
}

QWEN_EDGE_INLINE float keep_at_least(float w, uint32_t min_w_bits) {
  return float_to_bits(w) >= min_w_bits ? w : 0.0f;
}

// top_p bucket of a logit: y = (max - x) / T scaled to kBucketScale buckets per
// halving of the weight, clamped to the overflow bucket. Monotone in x, so every
// bucket is an interval of the ranking. Selects on bits (y >= 0) to vectorize.
QWEN_EDGE_INLINE uint32_t bucket_of(float x, float max_logit, float inv_t) {
  constexpr float kLast = static_cast<float>(kBuckets - 1);
  const float y = (max_logit - x) * inv_t * kBucketScale;  // >= 0; +inf for x = -inf
  const float yc = float_to_bits(y) < float_to_bits(kLast) ? y : kLast;
  return static_cast<uint32_t>(static_cast<int32_t>(yc));
}

// HF's repetition penalty (x > 0 ? x / rep : x * rep), then OpenAI's frequency and presence
// penalties (x - (frequency * count + presence)), in float32 with each operation rounded on
// its own, as numpy and torch compute them. The products go through double (exact for float
// operands and counts below 2^29) and are rounded back to float, so that the compiler cannot
// fuse them with the addition that follows into one FMA: GCC does by default where FMA is
// part of the baseline ISA (aarch64), and the penalized logits then differed from x86-64's
// in the last bit.
QWEN_EDGE_INLINE float apply_penalties(float x, float rep, float frequency, float presence,
                                       int32_t count) {
  if (rep != 1.0f) {
    x = x > 0.0f ? x / rep
                 : static_cast<float>(static_cast<double>(x) * static_cast<double>(rep));
  }
  const float scaled = static_cast<float>(static_cast<double>(frequency) * count);
  return x - (scaled + presence);
}

// z = sum_i exp(x_i - m), s = sum_i exp(x_i - m) * (x_i - m); then
// log_softmax_i = x_i - m - log z and entropy = log z - s / z.
struct ExpStats {
  double z;
  double s;
};

// ---- Dispatched kernels (sampler_kernels.cpp) -----------------------------------------

// dst[i] = mask bit i set ? src[i] : -inf (mask == nullptr: a plain copy; words past
// the end of the mask count as 0), and out[b] = max of dst's block b, in one pass.
// A NaN wins the max, so it turns up in the softmax sums, which are checked.
void copy_block_max(const float* src, std::size_t n, const uint32_t* mask, std::size_t words,
                    float* dst, float* out);
// out[b] = max of src's block b (copy_block_max without the copy).
void block_max(const float* src, std::size_t n, float* out);
// x[i] = -inf where mask bit i is clear (words past the end count as 0).
void mask_in_place(float* x, std::size_t n, const uint32_t* mask, std::size_t words);
// Max of x (NaN if any is NaN).
float max_value(const float* x, std::size_t n);
// Softmax sums at temperature 1.
ExpStats exp_stats(const float* x, std::size_t n, float m);
// exp_stats, plus out[b] = sum of exp(x_i - m) over block b (reused by plain sampling at
// T = 1).
ExpStats exp_stats_blocks(const float* x, std::size_t n, float m, float* out);
// out[b] = sum over block b of exp((x - max) * inv_t), zeroed below min_w; returns the total.
double block_weights(const float* x, std::size_t n, float max_logit, float inv_t, float min_w,
                     float* out);
// For the blocks whose max is >= threshold: w[i] = exp((x - max) * inv_t) and key[i] = the
// top_p bucket of x[i] (kExcluded for x < threshold or -inf). Other blocks are untouched.
void region_detail(const float* x, std::size_t n, const float* block_max, float threshold,
                   float max_logit, float inv_t, float* w, uint16_t* key);

}  // namespace qwen_edge::kernels
