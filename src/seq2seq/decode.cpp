#include "fancy/seq2seq/decode.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>

#include "fancy/seq2seq/vocab.h"

namespace fancy::seq2seq {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Alive {
  std::vector<int64_t> tokens;
  std::vector<std::vector<float>> attention;
};

struct Candidate {
  int64_t row, token;
  float score;
};

// Restores the module's training flag on exit.
struct EvalScope {
  Seq2Seq& m;
  bool was_training;
  explicit EvalScope(Seq2Seq& model) : m(model), was_training(model->is_training()) { m->eval(); }
  ~EvalScope() { m->train(was_training); }
};

std::vector<float> row_of(const torch::Tensor& t, int64_t r) {
  const auto row = t[r].contiguous();
  return std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
}

// Tokens that would repeat an n-gram already in the hypothesis.
void ban_repeats(const std::vector<int64_t>& h, int64_t n, float* logp) {
  if (n <= 0 || static_cast<int64_t>(h.size()) < n - 1) return;
  const size_t m = static_cast<size_t>(n - 1);
  for (size_t i = 0; i + m < h.size(); ++i) {
    if (std::equal(h.begin() + static_cast<long>(i), h.begin() + static_cast<long>(i + m), h.end() - static_cast<long>(m)))
      logp[h[i + m]] = kNegInf;
  }
}

}  // namespace

std::vector<std::vector<Hypothesis>> beam_search(Seq2Seq& model, const torch::Tensor& src,
                                                 const torch::Tensor& src_len, const DecodeOptions& o,
                                                 DecodeTimings* timings) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  double model_seconds = 0;
  auto timed = [&](auto&& f) {
    const auto t0 = clock::now();
    auto r = f();
    model_seconds += std::chrono::duration<double>(clock::now() - t0).count();
    return r;
  };
  TORCH_CHECK(o.beam() >= 1, "beam_search: beam (", o.beam(), ") must be at least 1");
  TORCH_CHECK(o.n_best() >= 1 && o.n_best() <= o.beam(), "beam_search: n_best (", o.n_best(),
              ") must be between 1 and the beam (", o.beam(), ")");
  TORCH_CHECK(o.length_penalty_kind() == "gnmt" || o.length_penalty_kind() == "avg", "beam_search: length_penalty_kind '",
              o.length_penalty_kind(), "' is not gnmt or avg");
  TORCH_CHECK(o.max_length_a() >= 0 && o.max_length_b() >= 0, "beam_search: max_length_a and max_length_b must be >= 0");
  torch::NoGradGuard no_grad;
  EvalScope eval(model);
  const int64_t B = src.size(0), K = o.beam(), V = model->options().tgt_vocab();
  std::vector<std::vector<Hypothesis>> results(static_cast<size_t>(B));
  if (B == 0) return results;
  const bool penalties = o.length_penalty() != 0 || o.coverage_penalty() != 0;
  const auto lens = src_len.to(torch::kCPU, torch::kInt64).contiguous();
  std::vector<int64_t> max_len(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b)
    max_len[b] = std::max<int64_t>(1, static_cast<int64_t>(o.max_length_a() * lens.data_ptr<int64_t>()[b]) + o.max_length_b());

  // One memory per sentence. All K beams of a sentence start equal, so the first step runs
  // one decoder row per sentence; its best K continuations become the K rows
  // (state.beam = 1, then K).
  auto state = timed([&] { return model->encode(src, src_len); });
  std::vector<int64_t> active(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) active[b] = b;
  std::vector<float> scores(static_cast<size_t>(B), 0.0f);
  std::vector<Alive> alive(static_cast<size_t>(B));
  std::vector<std::vector<Hypothesis>> finished(static_cast<size_t>(B));
  auto prev = torch::full({B}, Vocab::kBos, src.options().dtype(torch::kLong));

  auto finish = [&](int64_t b, Hypothesis h, float raw, int64_t length, const torch::Tensor& coverage, int64_t row) {
    double score = raw;
    if (o.length_penalty() != 0) {
      const double lp = o.length_penalty_kind() == "gnmt" ? std::pow((5.0 + length) / 6.0, o.length_penalty())
                                                          : std::pow(static_cast<double>(length), o.length_penalty());
      score /= lp;
    }
    if (o.coverage_penalty() != 0) {
      const auto cov = coverage[row];
      const auto mask = state.src_mask[row / state.beam];
      const double cp = torch::log(torch::clamp_max(cov.masked_select(mask), 1.0)).sum().item<double>();
      score += o.coverage_penalty() * cp;
    }
    h.score = score;
    finished[b].push_back(std::move(h));
  };

  for (int64_t t = 0; !active.empty(); ++t) {
    const int64_t A = static_cast<int64_t>(active.size()), R = state.beam;  // R decoder rows per sentence
    auto [logits, attn] = timed([&] { return model->step(state, prev); });
    auto logp = torch::log_softmax(logits.to(torch::kFloat), -1).contiguous();
    logp.select(1, Vocab::kPad).fill_(kNegInf);
    logp.select(1, Vocab::kBos).fill_(kNegInf);
    if (t < o.min_length()) logp.select(1, Vocab::kEos).fill_(kNegInf);
    if (o.no_repeat_ngram() > 0)
      for (int64_t r = 0; r < A * R; ++r) ban_repeats(alive[r].tokens, o.no_repeat_ngram(), logp[r].data_ptr<float>());
    auto total = logp + torch::from_blob(scores.data(), {A * R, 1}, torch::kFloat);
    const int64_t C = std::min(2 * K, R * V);
    auto top = total.view({A, R * V}).topk(C, 1);
    const auto top_s = std::get<0>(top).contiguous(), top_i = std::get<1>(top).contiguous();
    const float* ts = top_s.data_ptr<float>();
    const int64_t* ti = top_i.data_ptr<int64_t>();
    const auto attn_cpu = o.return_attention() ? attn.to(torch::kFloat).contiguous() : torch::Tensor();
    const auto coverage = state.coverage;

    std::vector<int64_t> next_rows, next_tokens, next_active, next_sources;
    std::vector<float> next_scores;
    std::vector<Alive> next_alive;
    for (int64_t a = 0; a < A; ++a) {
      const int64_t b = active[a];
      const int64_t length = t + 1;  // tokens generated so far, this one included
      std::vector<Candidate> keep;
      for (int64_t i = 0; i < C; ++i) {
        const float s = ts[a * C + i];
        if (s == kNegInf) break;
        const int64_t id = ti[a * C + i], row = a * R + id / V, token = id % V;
        if (token == Vocab::kEos) {
          if (i < K) {  // </s> among the first `beam` candidates finishes a hypothesis
            Hypothesis h;
            h.tokens = alive[row].tokens;
            if (o.return_attention()) {
              h.attention = alive[row].attention;
              h.attention.push_back(row_of(attn_cpu, row));
            }
            finish(b, std::move(h), s, length, coverage, row);
          }
          continue;
        }
        if (static_cast<int64_t>(keep.size()) < K) keep.push_back({row, token, s});
      }
      bool done = static_cast<int64_t>(finished[b].size()) >= K || keep.empty();
      if (!done && !penalties && static_cast<int64_t>(finished[b].size()) >= o.n_best()) {
        // Scores only fall, so without penalties no alive hypothesis can beat the finished
        // ones once n_best of them are in.
        double best = finished[b][0].score;
        for (const auto& h : finished[b]) best = std::max(best, h.score);
        done = best >= keep[0].score;
      }
      if (!done && length >= max_len[b]) {  // this sentence's length limit: end its beams here
        for (const auto& c : keep) {
          Hypothesis h;
          h.tokens = alive[c.row].tokens;
          h.tokens.push_back(c.token);
          if (o.return_attention()) {
            h.attention = alive[c.row].attention;
            h.attention.push_back(row_of(attn_cpu, c.row));
          }
          finish(b, std::move(h), c.score, length, coverage, c.row);
        }
        done = true;
      }
      if (done) continue;
      next_active.push_back(b);
      next_sources.push_back(a);
      while (static_cast<int64_t>(keep.size()) < K) keep.push_back({keep[0].row, keep[0].token, kNegInf});
      for (const auto& c : keep) {
        next_rows.push_back(c.row);
        next_tokens.push_back(c.token);
        next_scores.push_back(c.score);
        Alive h = alive[c.row];
        h.tokens.push_back(c.token);
        if (o.return_attention()) h.attention.push_back(row_of(attn_cpu, c.row));
        next_alive.push_back(std::move(h));
      }
    }
    if (next_active.empty()) break;
    // Reorder the beams and drop the finished sentences.
    state = state.select_beams(torch::tensor(next_rows, torch::kLong).to(src.device()),
                               torch::tensor(next_sources, torch::kLong).to(src.device()));
    prev = torch::tensor(next_tokens, torch::kLong).to(src.device());
    scores = std::move(next_scores);
    alive = std::move(next_alive);
    active = std::move(next_active);
  }
  for (int64_t b = 0; b < B; ++b) {
    auto& f = finished[b];
    std::stable_sort(f.begin(), f.end(), [](const Hypothesis& x, const Hypothesis& y) { return x.score > y.score; });
    if (static_cast<int64_t>(f.size()) > o.n_best()) f.resize(static_cast<size_t>(o.n_best()));
    results[b] = std::move(f);
  }
  if (timings) {
    timings->model_seconds += model_seconds;
    timings->total_seconds += std::chrono::duration<double>(clock::now() - start).count();
    timings->sentences += B;
    for (const auto& r : results)
      if (!r.empty()) timings->target_tokens += static_cast<int64_t>(r[0].tokens.size()) + 1;
  }
  return results;
}

std::vector<std::vector<Hypothesis>> greedy_decode(Seq2Seq& model, const torch::Tensor& src,
                                                   const torch::Tensor& src_len, DecodeOptions options,
                                                   DecodeTimings* timings) {
  // Beam 1 without penalties is greedy: the best token each step, </s> ends it.
  options.beam(1).n_best(1).length_penalty(0).coverage_penalty(0);
  return beam_search(model, src, src_len, options, timings);
}

std::vector<Hypothesis> sample(Seq2Seq& model, const torch::Tensor& src, const torch::Tensor& src_len,
                               const SampleOptions& o) {
  TORCH_CHECK(o.temperature() > 0, "sample: temperature (", o.temperature(), ") must be positive");
  TORCH_CHECK(o.top_k() >= 0, "sample: top_k (", o.top_k(), ") must be >= 0");
  TORCH_CHECK(o.top_p() > 0 && o.top_p() <= 1, "sample: top_p (", o.top_p(), ") must be in (0, 1]");
  torch::NoGradGuard no_grad;
  EvalScope eval(model);
  const int64_t B = src.size(0);
  std::vector<Hypothesis> out(static_cast<size_t>(B));
  if (B == 0) return out;
  const auto lens = src_len.to(torch::kCPU, torch::kInt64).contiguous();
  std::vector<std::mt19937_64> rng;
  for (int64_t b = 0; b < B; ++b) rng.emplace_back(o.seed() * 1000003ull + static_cast<uint64_t>(b));
  auto state = model->encode(src, src_len);
  std::vector<int64_t> active(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) active[b] = b;
  auto prev = torch::full({B}, Vocab::kBos, src.options().dtype(torch::kLong));
  for (int64_t t = 0; !active.empty(); ++t) {
    auto logits = model->step(state, prev).first.to(torch::kFloat);
    auto logp = torch::log_softmax(logits, -1).contiguous();  // the model's own, for the score
    auto z = (logits / o.temperature()).contiguous();
    z.select(1, Vocab::kPad).fill_(kNegInf);
    z.select(1, Vocab::kBos).fill_(kNegInf);
    if (t < o.min_length()) z.select(1, Vocab::kEos).fill_(kNegInf);
    const auto probs = torch::softmax(z, -1);
    const auto sorted = probs.sort(-1, /*descending=*/true);
    const auto sp = std::get<0>(sorted).contiguous(), si = std::get<1>(sorted).contiguous();
    const int64_t V = probs.size(1);
    std::vector<int64_t> keep_rows, next_tokens, next_active;
    for (size_t a = 0; a < active.size(); ++a) {
      const int64_t b = active[a];
      const float* p = sp[static_cast<int64_t>(a)].data_ptr<float>();
      const int64_t* ids = si[static_cast<int64_t>(a)].data_ptr<int64_t>();
      // The candidates: the top_k most likely, then the smallest prefix reaching top_p.
      int64_t n = o.top_k() > 0 ? std::min(o.top_k(), V) : V;
      double mass = 0;
      for (int64_t i = 0; i < n; ++i) {
        mass += p[i];
        if (mass >= o.top_p()) {
          n = i + 1;
          break;
        }
      }
      double total = 0;
      for (int64_t i = 0; i < n; ++i) total += p[i];
      const double u = std::uniform_real_distribution<double>(0.0, total)(rng[b]);
      int64_t token = ids[0];
      double acc = 0;
      for (int64_t i = 0; i < n; ++i) {
        acc += p[i];
        if (u < acc) {
          token = ids[i];
          break;
        }
      }
      Hypothesis& h = out[b];
      h.score += logp[static_cast<int64_t>(a)][token].item<double>();
      const int64_t limit =
          std::max<int64_t>(1, static_cast<int64_t>(o.max_length_a() * lens.data_ptr<int64_t>()[b]) + o.max_length_b());
      if (token == Vocab::kEos) continue;
      h.tokens.push_back(token);
      if (static_cast<int64_t>(h.tokens.size()) >= limit) continue;
      keep_rows.push_back(static_cast<int64_t>(a));
      next_tokens.push_back(token);
      next_active.push_back(b);
    }
    if (next_active.empty()) break;
    state = state.select(torch::tensor(keep_rows, torch::kLong).to(src.device()));
    prev = torch::tensor(next_tokens, torch::kLong).to(src.device());
    active = std::move(next_active);
  }
  return out;
}

}  // namespace fancy::seq2seq
