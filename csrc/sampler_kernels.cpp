// The sampler's dispatched kernels (declared in sampler_kernels.h).
#include "sampler_kernels.h"

#include <algorithm>

namespace qwen_edge::kernels {

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
// widest the CPU has picked at run time. Other architectures (aarch64: NEON is part
// of armv8-a) compile the baseline only.

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
static bool has_avx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return avx2;
}
static bool has_avx512() {
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
#define QWEN_EDGE_DISPATCH(ret, name, params, args)                                 \
  static ret name##_portable params { return name##_impl args; }                    \
  __attribute__((target("avx2,fma"))) static ret name##_avx2 params {               \
    return name##_impl args;                                                        \
  }                                                                                 \
  __attribute__((target(QWEN_EDGE_AVX512))) static ret name##_avx512 params {       \
    return name##_impl args;                                                        \
  }                                                                                 \
  ret name params {                                                                 \
    return has_avx512() ? name##_avx512 args                                        \
           : has_avx2() ? name##_avx2 args                                          \
                        : name##_portable args;                                     \
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

}  // namespace qwen_edge::kernels
