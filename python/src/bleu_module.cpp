// Python binding of fancy::bleu (pybind11, torch-free). The friendly API is
// python/fancy/bleu.py.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "fancy/bleu.h"

namespace py = pybind11;
namespace bl = fancy::bleu;

namespace {

bl::BleuOptions options(const std::string& tokenize, const std::string& smooth_method,
                        std::optional<double> smooth_value, bool lowercase, bool effective_order) {
  bl::BleuOptions o;
  o.tokenize = tokenize;
  o.smooth_method = smooth_method;
  o.smooth_value = smooth_value;
  o.lowercase = lowercase;
  o.effective_order = effective_order;
  return o;
}

}  // namespace

PYBIND11_MODULE(_fancy_bleu, m) {
  m.doc() = "fancy's sacreBLEU-compatible BLEU (torch-free); use fancy.bleu";
  py::register_exception<bl::Error>(m, "BleuError", PyExc_ValueError);
  py::class_<bl::BleuScore>(m, "BLEUScore")
      .def_readonly("score", &bl::BleuScore::score)
      .def_readonly("counts", &bl::BleuScore::counts)
      .def_readonly("totals", &bl::BleuScore::totals)
      .def_readonly("precisions", &bl::BleuScore::precisions)
      .def_readonly("bp", &bl::BleuScore::bp)
      .def_readonly("sys_len", &bl::BleuScore::sys_len)
      .def_readonly("ref_len", &bl::BleuScore::ref_len)
      .def_property_readonly("ratio", &bl::BleuScore::ratio)
      .def_property_readonly("name", [](const bl::BleuScore&) { return "BLEU"; })
      .def(
          "format",
          [](const bl::BleuScore& s, int width, bool score_only, const std::string& signature) {
            if (score_only) {
              char buf[64];
              std::snprintf(buf, sizeof(buf), "%.*f", width, s.score);
              return std::string(buf);
            }
            return std::string("BLEU") + (signature.empty() ? "" : "|" + signature) + " = " + s.verbose(width);
          },
          py::arg("width") = 2, py::arg("score_only") = false, py::arg("signature") = "")
      .def("__str__", [](const bl::BleuScore& s) { return "BLEU = " + s.verbose(2); })
      .def("__repr__", [](const bl::BleuScore& s) { return "BLEU = " + s.verbose(2); });

  m.def(
      "corpus_bleu",
      [](const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
         const std::string& smooth_method, std::optional<double> smooth_value, bool lowercase,
         const std::string& tokenize, bool use_effective_order) {
        return bl::corpus_bleu(hyps, refs, options(tokenize, smooth_method, smooth_value, lowercase, use_effective_order));
      },
      py::arg("hypotheses"), py::arg("references"), py::arg("smooth_method") = "exp",
      py::arg("smooth_value") = py::none(), py::arg("lowercase") = false, py::arg("tokenize") = "13a",
      py::arg("use_effective_order") = false);
  m.def(
      "sentence_bleu",
      [](const std::string& hyp, const std::vector<std::string>& refs, const std::string& smooth_method,
         std::optional<double> smooth_value, bool lowercase, const std::string& tokenize, bool use_effective_order) {
        return bl::sentence_bleu(hyp, refs, options(tokenize, smooth_method, smooth_value, lowercase, use_effective_order));
      },
      py::arg("hypothesis"), py::arg("references"), py::arg("smooth_method") = "exp",
      py::arg("smooth_value") = py::none(), py::arg("lowercase") = false, py::arg("tokenize") = "13a",
      py::arg("use_effective_order") = true);
  m.def(
      "compute_bleu",
      [](std::vector<double> correct, std::vector<double> total, long sys_len, long ref_len,
         const std::string& smooth_method, std::optional<double> smooth_value, bool effective_order) {
        const int order = static_cast<int>(correct.size());
        if (order < 1 || total.size() != correct.size())
          throw bl::Error("compute_bleu: correct and total need one count per n-gram order (got " +
                          std::to_string(correct.size()) + " and " + std::to_string(total.size()) + ")");
        return bl::compute_bleu(std::move(correct), std::move(total), sys_len, ref_len, smooth_method, smooth_value,
                                effective_order, order);
      },
      py::arg("correct"), py::arg("total"), py::arg("sys_len"), py::arg("ref_len"), py::arg("smooth_method") = "none",
      py::arg("smooth_value") = py::none(), py::arg("effective_order") = false);
  m.def("tokenize", &bl::tokenize, py::arg("line"), py::arg("tokenizer") = "13a");
  m.def(
      "signature",
      [](const std::string& tokenize, const std::string& smooth_method, std::optional<double> smooth_value,
         bool lowercase, bool effective_order, size_t num_refs) {
        return bl::signature(options(tokenize, smooth_method, smooth_value, lowercase, effective_order), num_refs);
      },
      py::arg("tokenize") = "13a", py::arg("smooth_method") = "exp", py::arg("smooth_value") = py::none(),
      py::arg("lowercase") = false, py::arg("effective_order") = false, py::arg("num_refs") = 1);
}
