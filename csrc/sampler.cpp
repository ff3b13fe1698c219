// Sampler kernels and the sampling step. Shapes: vocab V (~151,936 for Qwen),
// processed in blocks of 32 tokens so that block b lines up with llguidance mask
// word b, and a per-block max (block_max_) lets truncation skip whole blocks.
//
// Cost per call (V = 151,936): copy + mask, block maxima and the softmax sums are
// streaming passes over V floats; greedy stops there. Plain temperature sampling
// adds one weight pass (none at T = 1: the softmax block sums are reused). top_k
// looks only at blocks whose max reaches the k-th largest block max. top_p first
// looks only at tokens with p >= 1e-4; only if those lack the top_p mass (a flat
// distribution) does it histogram the whole vocab (see sample_top_p).
#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>

namespace qwen_edge {
namespace {

constexpr std::size_t kBlock = kMaskWordBits;  // logits block b <-> mask word b
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kPosInf = std::numeric_limits<float>::infinity();
constexpr float kExpFloor = -87.0f;  // exp(x < kExpFloor) is taken as 0 (< 2^-125)
// top_p prefilter: first look only at tokens with p >= kTopPPrefilter (at most
// 1 / kTopPPrefilter of them); fall back to every token if they lack the mass.
constexpr double kTopPPrefilter = 1e-4;
// top_p buckets over y = (max - x) / T: 32 buckets per halving of the weight,
// covering the weights down to exp(-88), plus one overflow bucket.
constexpr float kBucketScale = 32.0f / 0.693147181f;
constexpr std::size_t kBuckets = 4064 + 1;
constexpr uint16_t kExcluded = kBuckets;  // bucket slot for tokens outside the region

// ---- Kernels over the whole vocab -----------------------------------------
// Written to auto-vectorize at -O3 without -ffast-math:
//  * sums use a fixed number of lanes, which vectorizes without reassociation and
//    makes the result independent of the vector width (the AVX2 build can still
//    differ in the last bit where the compiler contracts a * b + c to an FMA);
//  * selects work on integer bit patterns: under the default -ftrapping-math GCC
//    does not if-convert float compares, which blocks vectorization;
//  * maxima are taken over order-preserving integer keys (a float max reduction
//    needs -ffinite-math-only).
// Each kernel is an always-inline *_impl compiled by QWEN_EDGE_DISPATCH for the
// baseline ISA and, on x86-64, also for AVX2+FMA and for AVX-512 (F/BW/DQ/VL), the
// widest the CPU has picked at run time (greedy sampling of 151,936 logits: 147 ->
// 117 us from AVX2 to AVX-512 on an AMD EPYC Zen 4).

#if defined(__GNUC__) || defined(__clang__)
#define QWEN_EDGE_INLINE inline __attribute__((always_inline))
#else
#define QWEN_EDGE_INLINE inline
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
bool has_avx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return avx2;
}
bool has_avx512() {
  static const bool avx512 = has_avx2() && __builtin_cpu_supports("avx512f") &&
                             __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512dq") &&
                             __builtin_cpu_supports("avx512vl");
  return avx512;
}
// GCC would otherwise keep 256-bit vectors under generic tuning; clang has no such
// target-attribute option (and would ignore the whole attribute over it).
#if defined(__clang__)
#define QWEN_EDGE_AVX512 "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"
#else
#define QWEN_EDGE_AVX512 "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,prefer-vector-width=512"
#endif
#define QWEN_EDGE_DISPATCH(ret, name, params, args)                                   \
  ret name##_portable params { return name##_impl args; }                             \
  __attribute__((target("avx2,fma"))) ret name##_avx2 params {                        \
    return name##_impl args;                                                           \
  }                                                                                    \
  __attribute__((target(QWEN_EDGE_AVX512))) ret name##_avx512 params {                 \
    return name##_impl args;                                                           \
  }                                                                                    \
  ret name params {                                                                    \
    return has_avx512() ? name##_avx512 args                                           \
           : has_avx2() ? name##_avx2 args                                             \
                        : name##_portable args;                                        \
  }
#else
#define QWEN_EDGE_DISPATCH(ret, name, params, args) \
  ret name params { return name##_impl args; }
#endif

// kBit[l] = 1 << l; a table (not a shift by the loop counter) so that the mask
// expansion vectorizes with SSE2's pand/pcmpeqd.
constexpr uint32_t kBit[kBlock] = {
    1u << 0,  1u << 1,  1u << 2,  1u << 3,  1u << 4,  1u << 5,  1u << 6,  1u << 7,
    1u << 8,  1u << 9,  1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
    1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
    1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31};
constexpr uint32_t kExpFloorBits = 0xC2AE0000u;  // bit pattern of kExpFloor (-87.0f)

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

// Unnormalized probability at temperature 1/inv_t relative to the max token (which
// gets exactly 1), zeroed below min_w (min_p) by comparing the bit patterns of
// non-negative floats. -inf logits get 0.
QWEN_EDGE_INLINE float weight(float x, float max_logit, float inv_t, uint32_t min_w_bits) {
  const float w = exp_nonpositive((x - max_logit) * inv_t);
  return bits_to_float(float_to_bits(w) >= min_w_bits ? float_to_bits(w) : 0u);
}

// dst[i] = mask bit i set ? src[i] : -inf (mask == nullptr: a plain copy; words past
// the end of the mask count as 0), and out[b] = max of dst's block b, in one pass.
// A NaN wins the max, so it turns up in the softmax sums, which are checked.
QWEN_EDGE_INLINE void copy_block_max_impl(const float* src, std::size_t n, const uint32_t* mask,
                                          std::size_t words, float* dst, float* out) {
  const uint32_t neg_inf = float_to_bits(kNegInf);
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  for (std::size_t b = 0; b < blocks; ++b) {
    const uint32_t word = mask == nullptr ? ~0u : b < words ? mask[b] : 0u;
    const std::size_t first = b * kBlock;
    if (first + kBlock <= n) {
      int32_t k[kBlock];  // keys, then a halving tree (this shape vectorizes on x86 and NEON)
      for (std::size_t l = 0; l < kBlock; ++l) {
        // Blend with an all-ones/zero select so the load is unconditional (a
        // conditional load is not if-converted, so the loop would not vectorize).
        const uint32_t keep = 0u - static_cast<uint32_t>((word & kBit[l]) != 0);
        const float v = bits_to_float((float_to_bits(src[first + l]) & keep) | (neg_inf & ~keep));
        dst[first + l] = v;
        k[l] = max_key(v);
      }
      for (std::size_t w = kBlock / 2; w > 0; w /= 2)
        for (std::size_t l = 0; l < w; ++l) k[l] = k[l + w] > k[l] ? k[l + w] : k[l];
      out[b] = from_order_key(k[0]);
    } else {
      int32_t m = order_key(kNegInf);
      for (std::size_t i = first; i < n; ++i) {
        dst[i] = (word & kBit[i - first]) ? src[i] : kNegInf;
        m = std::max(m, max_key(dst[i]));
      }
      out[b] = from_order_key(m);
    }
  }
}
QWEN_EDGE_DISPATCH(void, copy_block_max,
                   (const float* src, std::size_t n, const uint32_t* mask, std::size_t words,
                    float* dst, float* out),
                   (src, n, mask, words, dst, out))

// out[b] = max of src's block b (copy_block_max without the copy, for logits that
// nothing rewrites).
QWEN_EDGE_INLINE void block_max_impl(const float* src, std::size_t n, float* out) {
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t first = b * kBlock;
    if (first + kBlock <= n) {
      int32_t k[kBlock];
      for (std::size_t l = 0; l < kBlock; ++l) k[l] = max_key(src[first + l]);
      for (std::size_t w = kBlock / 2; w > 0; w /= 2)
        for (std::size_t l = 0; l < w; ++l) k[l] = k[l + w] > k[l] ? k[l + w] : k[l];
      out[b] = from_order_key(k[0]);
    } else {
      int32_t m = order_key(kNegInf);
      for (std::size_t i = first; i < n; ++i) m = std::max(m, max_key(src[i]));
      out[b] = from_order_key(m);
    }
  }
}
QWEN_EDGE_DISPATCH(void, block_max, (const float* src, std::size_t n, float* out),
                   (src, n, out))

// logits[i] = -inf where mask bit i is clear (words past the end count as 0).
QWEN_EDGE_INLINE void mask_in_place_impl(float* x, std::size_t n, const uint32_t* mask,
                                         std::size_t words) {
  const uint32_t neg_inf = float_to_bits(kNegInf);
  for (std::size_t b = 0; b * kBlock < n; ++b) {
    const uint32_t word = b < words ? mask[b] : 0u;
    float* p = x + b * kBlock;
    const std::size_t len = std::min(kBlock, n - b * kBlock);
    if (len == kBlock) {
      for (std::size_t l = 0; l < kBlock; ++l) {
        const uint32_t keep = 0u - static_cast<uint32_t>((word & kBit[l]) != 0);
        p[l] = bits_to_float((float_to_bits(p[l]) & keep) | (neg_inf & ~keep));
      }
    } else {
      for (std::size_t l = 0; l < len; ++l) p[l] = (word & kBit[l]) ? p[l] : kNegInf;
    }
  }
}
QWEN_EDGE_DISPATCH(void, mask_in_place,
                   (float* x, std::size_t n, const uint32_t* mask, std::size_t words),
                   (x, n, mask, words))

// Max of x (NaN if any is NaN): per 32-token block, keys and a halving tree (the
// shape that vectorizes; a lane-wise max reduction over these keys does not).
QWEN_EDGE_INLINE float max_value_impl(const float* x, std::size_t n) {
  int32_t m = order_key(kNegInf);
  std::size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    int32_t k[kBlock];
    for (std::size_t l = 0; l < kBlock; ++l) k[l] = max_key(x[i + l]);
    for (std::size_t w = kBlock / 2; w > 0; w /= 2)
      for (std::size_t l = 0; l < w; ++l) k[l] = k[l + w] > k[l] ? k[l + w] : k[l];
    m = std::max(m, k[0]);
  }
  for (; i < n; ++i) m = std::max(m, max_key(x[i]));
  return from_order_key(m);
}
QWEN_EDGE_DISPATCH(float, max_value, (const float* x, std::size_t n), (x, n))

// z = sum_i exp(x_i - m), s = sum_i exp(x_i - m) * (x_i - m); then
// log_softmax_i = x_i - m - log z and entropy = log z - s / z.
struct ExpStats {
  double z;
  double s;
};

// Softmax sums at temperature 1. Float lanes are flushed to double every kChunk
// tokens so that no float sum runs long.
QWEN_EDGE_INLINE ExpStats exp_stats_impl(const float* x, std::size_t n, float m) {
  constexpr std::size_t kLanes = 16;
  constexpr std::size_t kChunk = 512;
  double z[kLanes] = {};
  double s[kLanes] = {};
  for (std::size_t i = 0; i < n; i += kChunk) {
    float zf[kLanes] = {};
    float sf[kLanes] = {};
    if (i + kChunk <= n) {
      for (std::size_t j = i; j < i + kChunk; j += kLanes)
        for (std::size_t l = 0; l < kLanes; ++l) {
          const float d = x[j + l] - m;
          const float e = exp_nonpositive(d);
          zf[l] += e;
          sf[l] += e * clamp_to_floor(d);  // clamp: 0 * -inf would be NaN
        }
    } else {
      for (std::size_t j = i; j < n; ++j) {
        const float d = x[j] - m;
        const float e = exp_nonpositive(d);
        zf[j % kLanes] += e;
        sf[j % kLanes] += e * clamp_to_floor(d);
      }
    }
    for (std::size_t l = 0; l < kLanes; ++l) {
      z[l] += zf[l];
      s[l] += sf[l];
    }
  }
  ExpStats r{0.0, 0.0};
  for (std::size_t l = 0; l < kLanes; ++l) {
    r.z += z[l];
    r.s += s[l];
  }
  return r;
}
QWEN_EDGE_DISPATCH(ExpStats, exp_stats, (const float* x, std::size_t n, float m), (x, n, m))

// exp_stats, plus out[b] = sum of exp(x_i - m) over block b, which sample_full
// reuses at T = 1 (slower than exp_stats: a horizontal sum per block).
QWEN_EDGE_INLINE ExpStats exp_stats_blocks_impl(const float* x, std::size_t n, float m,
                                                float* out) {
  constexpr std::size_t kW = 8;
  const std::size_t full = n / kBlock;
  float s[kW] = {};
  double z = 0.0;
  for (std::size_t b = 0; b < full; ++b) {
    const float* p = x + b * kBlock;
    float acc[kW] = {};
    for (std::size_t j = 0; j < kBlock; j += kW)
      for (std::size_t l = 0; l < kW; ++l) {
        const float d = p[j + l] - m;
        const float e = exp_nonpositive(d);
        acc[l] += e;
        s[l] += e * clamp_to_floor(d);
      }
    for (std::size_t w = kW / 2; w > 0; w /= 2)
      for (std::size_t l = 0; l < w; ++l) acc[l] += acc[l + w];
    out[b] = acc[0];
    z += acc[0];
  }
  if (full * kBlock < n) {
    float acc = 0.0f;
    for (std::size_t i = full * kBlock; i < n; ++i) {
      const float d = x[i] - m;
      const float e = exp_nonpositive(d);
      acc += e;
      s[0] += e * clamp_to_floor(d);
    }
    out[full] = acc;
    z += acc;
  }
  double s_total = 0.0;
  for (float v : s) s_total += v;
  return {z, s_total};
}
QWEN_EDGE_DISPATCH(ExpStats, exp_stats_blocks,
                   (const float* x, std::size_t n, float m, float* out), (x, n, m, out))

// out[b] = sum of weight() over block b; returns the sum over all blocks.
QWEN_EDGE_INLINE double block_weights_impl(const float* x, std::size_t n, float max_logit,
                                           float inv_t, float min_w, float* out) {
  constexpr std::size_t kW = 8;
  const uint32_t min_w_bits = float_to_bits(min_w);
  const std::size_t full = n / kBlock;
  double total = 0.0;
  for (std::size_t b = 0; b < full; ++b) {
    const float* p = x + b * kBlock;
    float acc[kW] = {};
    for (std::size_t j = 0; j < kBlock; j += kW)
      for (std::size_t l = 0; l < kW; ++l) acc[l] += weight(p[j + l], max_logit, inv_t, min_w_bits);
    for (std::size_t w = kW / 2; w > 0; w /= 2)
      for (std::size_t l = 0; l < w; ++l) acc[l] += acc[l + w];
    out[b] = acc[0];
    total += acc[0];
  }
  if (full * kBlock < n) {
    float acc = 0.0f;
    for (std::size_t i = full * kBlock; i < n; ++i)
      acc += weight(x[i], max_logit, inv_t, min_w_bits);
    out[full] = acc;
    total += acc;
  }
  return total;
}
QWEN_EDGE_DISPATCH(double, block_weights,
                   (const float* x, std::size_t n, float max_logit, float inv_t, float min_w,
                    float* out),
                   (x, n, max_logit, inv_t, min_w, out))

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string range_message(const char* what, int64_t id, std::size_t vocab) {
  return std::string(what) + " " + std::to_string(id) + " is out of range [0, " +
         std::to_string(vocab) + ")";
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

// Per token of a block: w = exp((x - max) / T) (no min_p) and key = bucket_of(x),
// or kExcluded for x < threshold and x = -inf. Unconditional work, integer
// compares on order keys and a non-short-circuit test keep it branch-free.
QWEN_EDGE_INLINE void token_detail(float x, float max_logit, float inv_t,
                                   int32_t threshold_key, float* w, uint16_t* key) {
  *w = exp_nonpositive((x - max_logit) * inv_t);
  const uint32_t bucket = bucket_of(x, max_logit, inv_t);
  const int32_t k = order_key(x);
  const bool inside = (k >= threshold_key) & (k != order_key(kNegInf));
  *key = static_cast<uint16_t>(inside ? bucket : kExcluded);
}

// token_detail for every token of the blocks whose max is >= threshold (others
// are left untouched), into w[vocab] and key[vocab].
QWEN_EDGE_INLINE void region_detail_impl(const float* x, std::size_t n, const float* block_max,
                                         float threshold, float max_logit, float inv_t,
                                         float* w, uint16_t* key) {
  const int32_t threshold_key = order_key(threshold);
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  for (std::size_t b = 0; b < blocks; ++b) {
    if (!(block_max[b] >= threshold) || block_max[b] == kNegInf) continue;
    const std::size_t first = b * kBlock;
    if (first + kBlock <= n) {
      for (std::size_t l = 0; l < kBlock; ++l)  // fixed trip count: fully vectorized
        token_detail(x[first + l], max_logit, inv_t, threshold_key, &w[first + l],
                     &key[first + l]);
    } else {
      for (std::size_t i = first; i < n; ++i)
        token_detail(x[i], max_logit, inv_t, threshold_key, &w[i], &key[i]);
    }
  }
}
QWEN_EDGE_DISPATCH(void, region_detail,
                   (const float* x, std::size_t n, const float* block_max, float threshold,
                    float max_logit, float inv_t, float* w, uint16_t* key),
                   (x, n, block_max, threshold, max_logit, inv_t, w, key))

QWEN_EDGE_INLINE float keep_at_least(float w, uint32_t min_w_bits) {
  return float_to_bits(w) >= min_w_bits ? w : 0.0f;
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
      float v = x[t];
      if (rep != 1.0f) v = v > 0.0f ? v / rep : v * rep;  // HF RepetitionPenalty
      v -= frequency * static_cast<float>(counts_[t]) + presence;  // OpenAI
      x[t] = v;
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
