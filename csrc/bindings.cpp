// The only pybind11 file: numpy buffers in, C++ views out, GIL released around the
// kernels. Argument checks that need the Python API (dtype, ndim) run first, with
// the GIL held; the kernels then run under py::gil_scoped_release. Array arguments
// are taken by const reference so no Python refcount changes without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "huge_pages.h"
#include "ngram.h"
#include "sampler.h"

namespace py = pybind11;

namespace qwen_edge {
namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using Int32Array = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using MaskArray = py::array_t<uint32_t, py::array::c_style | py::array::forcecast>;

std::string shape_of(const py::array& a) {
  return py::str(py::tuple(py::cast(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()))));
}

// Logits: any real 1-D array; float64/float16 are cast to float32 (a copy).
FloatArray as_logits(const py::array& a, const char* name) {
  if (a.ndim() != 1)
    throw std::invalid_argument(std::string(name) + " must be 1-D [vocab], got shape " +
                                shape_of(a));
  const char kind = a.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    throw std::invalid_argument(std::string(name) + " must be a float array, got dtype " +
                                std::string(py::str(a.dtype())));
  return FloatArray::ensure(a);
}

// Token ids: any 1-D integer array (or list); None -> empty. Rejects floats rather
// than truncating them, and values outside int32 rather than wrapping them.
Int32Array as_tokens(const py::object& obj, const char* name) {
  if (obj.is_none()) return Int32Array(0);
  const py::array a = py::array::ensure(obj);
  if (!a) throw std::invalid_argument(std::string(name) + " must be an integer array");
  if (a.ndim() != 1)
    throw std::invalid_argument(std::string(name) + " must be 1-D, got shape " + shape_of(a));
  const char kind = a.dtype().kind();
  if (a.size() > 0 && kind != 'i' && kind != 'u')
    throw std::invalid_argument(std::string(name) + " must hold integer token ids, got dtype " +
                                std::string(py::str(a.dtype())));
  if (a.size() > 0 && (a.itemsize() > 4 || (kind == 'u' && a.itemsize() == 4))) {
    // Check the range before the (wrapping) cast to int32.
    const auto wide = py::array_t<int64_t, py::array::forcecast>::ensure(a);
    const auto r = wide.unchecked<1>();
    for (py::ssize_t i = 0; i < r.shape(0); ++i)
      if (r(i) < std::numeric_limits<int32_t>::min() || r(i) > std::numeric_limits<int32_t>::max())
        throw std::out_of_range(std::string(name) + " value " + std::to_string(r(i)) +
                                " does not fit in int32");
  }
  return Int32Array::ensure(a);
}

// Bitmask: 1-D uint32 or int32 (llguidance allocates int32; same bits), or None.
std::optional<MaskArray> as_mask(const py::object& obj) {
  if (obj.is_none()) return std::nullopt;
  const py::array a = py::array::ensure(obj);
  if (!a || a.ndim() != 1)
    throw std::invalid_argument(
        "mask must be a 1-D uint32/int32 bitmask [ceil(vocab / 32)] (for llguidance's "
        "[batch, words] array pass bitmask[i])" +
        (a ? ", got shape " + shape_of(a) : std::string()));
  const char kind = a.dtype().kind();
  if ((kind != 'i' && kind != 'u') || a.itemsize() != 4)
    throw std::invalid_argument("mask must be uint32 or int32, got dtype " +
                                std::string(py::str(a.dtype())));
  return MaskArray::ensure(a);  // int32 -> uint32 keeps the bit pattern
}

py::tuple sample_py(Sampler& sampler, const py::array& logits, const py::object& history,
                    const py::object& mask) {
  const FloatArray x = as_logits(logits, "logits");
  const Int32Array h = as_tokens(history, "history");
  const std::optional<MaskArray> mk = as_mask(mask);
  SampleResult r;
  {
    py::gil_scoped_release nogil;
    r = sampler.sample(x.data(), static_cast<std::size_t>(x.size()), h.data(),
                       static_cast<std::size_t>(h.size()), mk ? mk->data() : nullptr,
                       mk ? static_cast<std::size_t>(mk->size()) : 0);
  }
  return py::make_tuple(r.token, r.logprob, r.entropy);
}

py::array_t<float> process_logits_py(Sampler& sampler, const py::array& logits,
                                     const py::object& history, const py::object& mask) {
  const FloatArray x = as_logits(logits, "logits");
  const Int32Array h = as_tokens(history, "history");
  const std::optional<MaskArray> mk = as_mask(mask);
  py::array_t<float> out(x.size());
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    sampler.process_logits(x.data(), static_cast<std::size_t>(x.size()), h.data(),
                           static_cast<std::size_t>(h.size()), mk ? mk->data() : nullptr,
                           mk ? static_cast<std::size_t>(mk->size()) : 0, dst);
  }
  return out;
}

void apply_token_mask_py(py::array logits, const py::object& mask) {
  // In place, so no silent conversion: a cast copy would be masked and dropped.
  if (logits.ndim() != 1 || !logits.dtype().is(py::dtype::of<float>()) ||
      !(logits.flags() & py::array::c_style) || !logits.writeable())
    throw std::invalid_argument(
        "logits must be a writeable, C-contiguous 1-D float32 array (it is masked in place)");
  const std::optional<MaskArray> mk = as_mask(mask);
  if (!mk) throw std::invalid_argument("mask must not be None");
  float* x = static_cast<float*>(logits.mutable_data());
  const auto n = static_cast<std::size_t>(logits.size());
  py::gil_scoped_release nogil;
  apply_token_mask(x, n, mk->data(), static_cast<std::size_t>(mk->size()));
}

py::tuple log_softmax_stats_py(const py::array& logits) {
  const FloatArray x = as_logits(logits, "logits");
  SoftmaxStats s;
  {
    py::gil_scoped_release nogil;
    s = log_softmax_stats(x.data(), static_cast<std::size_t>(x.size()));
  }
  return py::make_tuple(s.max_index, s.logprob_of_max, s.entropy);
}

py::array_t<int32_t> ngram_draft_py(const py::object& tokens, int64_t max_ngram,
                                    int64_t min_ngram, int64_t k) {
  const Int32Array t = as_tokens(tokens, "tokens");
  std::vector<int32_t> draft;
  {
    py::gil_scoped_release nogil;
    draft = ngram_draft(t.data(), static_cast<std::size_t>(t.size()), max_ngram, min_ngram, k);
  }
  return py::array_t<int32_t>(static_cast<py::ssize_t>(draft.size()), draft.data());
}

std::size_t accept_draft_py(const py::object& draft, const py::object& target) {
  const Int32Array d = as_tokens(draft, "draft");
  const Int32Array t = as_tokens(target, "target");
  return accept_draft(d.data(), static_cast<std::size_t>(d.size()), t.data(),
                      static_cast<std::size_t>(t.size()));
}

std::string repr(const SamplerConfig& c) {
  std::string bias = py::str(py::cast(c.logit_bias));
  return "SamplerConfig(temperature=" + std::string(py::str(py::float_(c.temperature))) +
         ", top_k=" + std::to_string(c.top_k) +
         ", top_p=" + std::string(py::str(py::float_(c.top_p))) +
         ", min_p=" + std::string(py::str(py::float_(c.min_p))) +
         ", repetition_penalty=" + std::string(py::str(py::float_(c.repetition_penalty))) +
         ", presence_penalty=" + std::string(py::str(py::float_(c.presence_penalty))) +
         ", frequency_penalty=" + std::string(py::str(py::float_(c.frequency_penalty))) +
         ", logit_bias=" + bias + ", seed=" + std::to_string(c.seed) + ")";
}

}  // namespace
}  // namespace qwen_edge

PYBIND11_MODULE(_core, m) {
  using namespace qwen_edge;
  m.doc() = "qwen-edge native core: sampling, grammar masks, n-gram drafting, huge pages (private).";
  m.attr("__version__") = QWEN_EDGE_VERSION;

  py::class_<SamplerConfig>(m, "SamplerConfig",
                            "Sampling options (HF/OpenAI names). Validated on construction.")
      .def(py::init([](double temperature, int64_t top_k, double top_p, double min_p,
                       double repetition_penalty, double presence_penalty,
                       double frequency_penalty, std::map<int32_t, double> logit_bias,
                       uint64_t seed) {
             SamplerConfig c;
             c.temperature = temperature;
             c.top_k = top_k;
             c.top_p = top_p;
             c.min_p = min_p;
             c.repetition_penalty = repetition_penalty;
             c.presence_penalty = presence_penalty;
             c.frequency_penalty = frequency_penalty;
             c.logit_bias = std::move(logit_bias);
             c.seed = seed;
             c.validate();
             return c;
           }),
           py::kw_only(), py::arg("temperature") = 1.0, py::arg("top_k") = 0,
           py::arg("top_p") = 1.0, py::arg("min_p") = 0.0, py::arg("repetition_penalty") = 1.0,
           py::arg("presence_penalty") = 0.0, py::arg("frequency_penalty") = 0.0,
           py::arg("logit_bias") = std::map<int32_t, double>{}, py::arg("seed") = 0)
      .def_readonly("temperature", &SamplerConfig::temperature)
      .def_readonly("top_k", &SamplerConfig::top_k)
      .def_readonly("top_p", &SamplerConfig::top_p)
      .def_readonly("min_p", &SamplerConfig::min_p)
      .def_readonly("repetition_penalty", &SamplerConfig::repetition_penalty)
      .def_readonly("presence_penalty", &SamplerConfig::presence_penalty)
      .def_readonly("frequency_penalty", &SamplerConfig::frequency_penalty)
      .def_readonly("logit_bias", &SamplerConfig::logit_bias)
      .def_readonly("seed", &SamplerConfig::seed)
      .def("__repr__", &repr);

  py::class_<Sampler>(m, "Sampler",
                      "A SamplerConfig plus its own RNG (seeded from config.seed) and scratch.")
      .def(py::init<SamplerConfig>(), py::arg("config"))
      .def_property_readonly("config", &Sampler::config)
      .def("sample", &sample_py, py::arg("logits"), py::arg("history") = py::none(),
           py::arg("mask") = py::none(),
           "Process and sample one token -> (token, logprob, entropy).\n\n"
           "logprob = log p(token) and entropy = -sum p log p (nats), where p is the\n"
           "softmax at temperature 1 of the processed logits (after logit_bias,\n"
           "penalties and mask; before temperature/top_k/top_p/min_p).")
      .def("process_logits", &process_logits_py, py::arg("logits"),
           py::arg("history") = py::none(), py::arg("mask") = py::none(),
           "Logits after logit_bias, penalties and mask (before temperature), a new array.");

  m.def("apply_token_mask", &apply_token_mask_py, py::arg("logits"), py::arg("mask"),
        "Set logits[i] = -inf in place where mask bit i (word i // 32, bit i % 32) is 0.");
  m.def("log_softmax_stats", &log_softmax_stats_py, py::arg("logits"),
        "(argmax, log-softmax at argmax, entropy in nats) of 1-D logits.");
  m.def("ngram_draft", &ngram_draft_py, py::arg("tokens"), py::arg("max_ngram") = 3,
        py::arg("min_ngram") = 1, py::arg("k") = 5,
        "Prompt-lookup draft: up to k tokens that followed the most recent earlier "
        "match of the longest suffix n-gram (max_ngram..min_ngram); int32, may be empty.");
  m.def("huge_page_size", &huge_page_size,
        "Transparent huge page size in bytes; 0 without THP or with THP set to never.");
  m.def("resident_huge_chunks", &resident_huge_chunks, py::call_guard<py::gil_scoped_release>(),
        "Addresses of the huge-page-aligned chunks of private anonymous memory whose every "
        "page is resident.");
  py::class_<HugePageCollapse>(m, "HugePageCollapse",
                               "Collapses resident chunks into huge pages on a background "
                               "thread (MADV_COLLAPSE); asks it to stop when destroyed.")
      .def(py::init<std::vector<uintptr_t>>(), py::arg("chunks"))
      .def("wait", &HugePageCollapse::wait, py::call_guard<py::gil_scoped_release>(),
           "Block until every chunk was tried; the bytes collapsed.")
      .def_property_readonly("done", &HugePageCollapse::done)
      .def_property_readonly("requested_bytes", &HugePageCollapse::requested_bytes)
      .def_property_readonly("failed_chunks", &HugePageCollapse::failed_chunks);
  m.def("accept_draft", &accept_draft_py, py::arg("draft"), py::arg("target"),
        "Length of the longest prefix of draft equal to target (len(draft) + 1 tokens).");
}
