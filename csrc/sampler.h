// Token sampling for one decode step: logit_bias -> penalties -> grammar mask ->
// temperature -> top_k -> top_p -> min_p -> draw (the HF/vLLM order).
//
// Pure C++17, no Python. Every function takes raw (pointer, size) views of
// contiguous buffers; bindings.cpp turns numpy arrays into these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <vector>

namespace qwen_edge {

// llguidance token-mask layout: word i/32, bit i%32 (LSB first) set = token i allowed.
inline constexpr std::size_t kMaskWordBits = 32;
// Temperatures below this are treated as greedy, like vLLM's _SAMPLING_EPS: dividing
// by a denormal temperature would turn (x - max) / T into NaN or -inf everywhere.
inline constexpr double kGreedyTemperature = 1e-5;

// Sampling options; names and meanings follow HF/OpenAI. Defaults mean "off".
struct SamplerConfig {
  double temperature = 1.0;         // 0 (or < kGreedyTemperature) = greedy argmax
  int64_t top_k = 0;                // 0 = off
  double top_p = 1.0;               // 1 = off; keep smallest top set with mass >= top_p
  double min_p = 0.0;               // 0 = off; keep p >= min_p * p_max
  double repetition_penalty = 1.0;  // HF: for tokens in history, x>0 ? x/pen : x*pen
  double presence_penalty = 0.0;    // OpenAI: x -= presence * (count > 0)
  double frequency_penalty = 0.0;   // OpenAI: x -= frequency * count
  std::map<int32_t, double> logit_bias;  // token id -> additive bias (finite or -inf)
  uint64_t seed = 0;

  // Throws std::invalid_argument naming the offending field.
  void validate() const;
  bool greedy() const { return temperature < kGreedyTemperature; }
};

// logprob / entropy are those of softmax(processed logits) at temperature 1, i.e.
// after logit_bias, penalties and the mask but before temperature and truncation.
struct SampleResult {
  int32_t token;
  float logprob;  // log p(token), nats
  float entropy;  // -sum p log p, nats (masked tokens contribute 0)
};

struct SoftmaxStats {
  int32_t max_index;     // argmax, ties -> lowest id
  float logprob_of_max;  // log softmax at max_index
  float entropy;         // nats
};

// Sets logits[i] = -inf for every token whose mask bit is clear. Tokens past the end
// of the mask (mask_words * 32 < vocab) are disallowed, as in llguidance's
// apply_token_bitmask_inplace. Throws if mask_words > ceil(vocab / 32).
void apply_token_mask(float* logits, std::size_t vocab, const uint32_t* mask,
                      std::size_t mask_words);

// Argmax, its log-probability and the entropy of softmax(logits). -inf entries are
// allowed (probability 0); throws std::invalid_argument if none is finite or on NaN.
SoftmaxStats log_softmax_stats(const float* logits, std::size_t vocab);

// Holds a config, its RNG and scratch buffers reused across calls (no per-token
// allocation once warmed up). Calls on one Sampler are serialized by a mutex;
// use one Sampler per sequence.
class Sampler {
 public:
  explicit Sampler(SamplerConfig config);

  const SamplerConfig& config() const { return config_; }

  // logits: [vocab] (not modified); history: token ids to penalize (may be empty,
  // each in [0, vocab) else std::out_of_range); mask: nullptr or [mask_words] words.
  SampleResult sample(const float* logits, std::size_t vocab, const int32_t* history,
                      std::size_t history_len, const uint32_t* mask, std::size_t mask_words);

  // Writes the processed logits (bias, penalties, mask; no temperature) to out[vocab].
  void process_logits(const float* logits, std::size_t vocab, const int32_t* history,
                      std::size_t history_len, const uint32_t* mask, std::size_t mask_words,
                      float* out);

  // A candidate token during truncation: processed logit x, weight
  // w = exp((x - max) / T) (so the max token has w == 1), id.
  struct Candidate {
    float x;
    float w;
    int32_t id;
  };

 private:
  void process(const float* logits, std::size_t vocab, const int32_t* history,
               std::size_t history_len, const uint32_t* mask, std::size_t mask_words);
  int32_t sample_top_k(float max_logit);
  int32_t sample_top_p(float max_logit, double z1);
  int32_t sample_full(float max_logit, double z1);
  double bucket_histogram(float threshold, float max_logit, float inv_t, uint32_t min_w_bits);
  int32_t draw(std::size_t n);

  SamplerConfig config_;
  std::mt19937_64 rng_;
  std::mutex mutex_;
  // Scratch, sized on first use and reused:
  std::vector<float> logits_;       // [vocab] processed logits (when anything rewrites them)
  // The logits the current call samples from: logits_, or the caller's buffer when no mask,
  // bias or penalty applies (valid until the call returns).
  const float* x_ = nullptr;
  std::size_t vocab_ = 0;
  std::vector<float> block_max_;    // [ceil(vocab/32)] max of each 32-token block
  std::vector<float> block_tmp_;    // [ceil(vocab/32)] block sums / selection scratch
  std::vector<int32_t> counts_;     // [vocab] all zero between calls
  std::vector<int32_t> unique_;     // distinct history tokens
  std::vector<Candidate> cand_;     // truncation candidates
  std::vector<double> bucket_mass_;  // top_p: weight per rank bucket (sampler.cpp)
  std::vector<double> bucket_kept_;  // top_p: the same, counting only w >= min_p
  std::vector<float> weights_;       // top_p: [vocab] w of the histogrammed tokens
  std::vector<uint16_t> buckets_;    // top_p: [vocab] their bucket
};

}  // namespace qwen_edge
