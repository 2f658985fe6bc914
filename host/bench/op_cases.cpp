// op_cases.cpp: see op_cases.h.
#include "bench/op_cases.h"

#include <algorithm>  // std::max, std::shuffle
#include <cstdarg>    // va_list
#include <cmath>      // std::sqrt, NAN, INFINITY
#include <cstdio>     // std::vsnprintf
#include <numeric>    // std::iota
#include <random>     // std::mt19937
#include <stdexcept>  // std::invalid_argument

#include "model/model.h"  // gan_layers, parameter_count

namespace mnistgan {
namespace {

// ---- host data and backend buffers -------------------------------------------------------

// n uniform floats in [lo, hi) from std::mt19937(seed), never exactly zero (a zero hides
// sign, bias and scaling bugs).
std::vector<float> random_values(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) {
    do x = dist(gen);
    while (x == 0.0f);
  }
  return v;
}

std::vector<float> nans(size_t n) { return std::vector<float>(n, NAN); }

// A buffer on `backend` holding a copy of `host` (at least one element, so that a pointer
// to it is unique even for an empty vector).
template <class T>
BackendBuffer<T> put(Backend& backend, const std::vector<T>& host) {
  BackendBuffer<T> b(backend, std::max<size_t>(host.size(), 1));
  if (!host.empty()) backend.to_backend(b.get(), host.data(), host.size() * sizeof(T));
  return b;
}

// The first n elements at p.
template <class T>
std::vector<T> get(Backend& backend, const T* p, size_t n) {
  std::vector<T> host(n);
  if (n != 0) backend.to_host(host.data(), p, n * sizeof(T));
  return host;
}

template <class T>
std::vector<float> get_as_float(Backend& backend, const T* p, size_t n) {
  const std::vector<T> v = get(backend, p, n);
  return std::vector<float>(v.begin(), v.end());
}

const char* act_name(Activation a) {
  return a == Activation::kNone ? "none" : a == Activation::kLeakyRelu ? "leaky" : "tanh";
}

std::string text(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string text(const char* format, ...) {
  char buf[256];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  return buf;
}

// A case of `op` with the benchmark's shape columns set from one OpShape.
OpCase make_case(Op op, std::string params, int rows, int in, int out, WorkCount work,
                 std::function<std::unique_ptr<CaseRun>(Backend&)> make) {
  OpCase c;
  c.op = op;
  c.kernel = op == Op::kAdam ? "adam" : op_check(op).name;
  c.params = std::move(params);
  c.rows = rows, c.in = in, c.out = out;
  c.work = work;
  c.make = std::move(make);
  return c;
}

// ---- linear ------------------------------------------------------------------------------

std::string linear_text(const LinearParams& p) {
  return text("rows=%d in=%d out=%d act=%s %s", p.rows, p.in, p.out, act_name(p.act),
              p.bias ? "bias" : "no-bias");
}

OpCase linear_forward_case(const LinearParams& p, uint32_t seed) {
  return make_case(Op::kLinearForward, linear_text(p), p.rows, p.in, p.out,
                   linear_forward_work(p.rows, p.in, p.out, p.bias), [p, seed](Backend& be) {
                     return std::make_unique<LinearForwardRun>(be, p, seed);
                   });
}

// Every pointer offset by one float (not 16-byte aligned), Y's first element left as it was.
class UnalignedLinearRun : public CaseRun {
 public:
  UnalignedLinearRun(Backend& be, const LinearParams& p, uint32_t seed) : be_(be), p_(p) {
    const size_t nx = static_cast<size_t>(p.rows) * p.in, nw = static_cast<size_t>(p.out) * p.in;
    x_ = put(be, random_values(nx + 1, seed));
    w_ = put(be, random_values(nw + 1, seed + 1, -0.1f, 0.1f));
    b_ = put(be, random_values(p.out + 1, seed + 2, -0.1f, 0.1f));
    y_ = put(be, nans(static_cast<size_t>(p.rows) * p.out + 1));
  }
  void run() override {
    be_.linear_forward(x_.get() + 1, w_.get() + 1, b_.get() + 1, y_.get() + 1, p_.rows, p_.in,
                       p_.out, p_.act, p_.slope);
  }
  std::vector<CaseOutput> outputs() override {
    return {{"Y", get(be_, y_.get(), y_.size()), p_.in}};
  }

 private:
  Backend& be_;
  LinearParams p_;
  BackendBuffer<float> x_, w_, b_, y_;
};

std::string linear_backward_text(const LinearBackwardParams& p) {
  std::string s = linear_text(p.layer) + (p.accumulate ? " accumulate" : " overwrite");
  if (p.ld.x != 0 || p.ld.y != 0) s += text(" ldx=%d ldy=%d", p.ld.x, p.ld.y);
  if (!(p.want_dx && p.want_dw && p.want_db))
    s += text(" outputs:%s%s%s", p.want_dx ? " dX" : "", p.want_dw ? " dW" : "",
              p.want_db ? " db" : "");
  return s;
}

OpCase linear_backward_case(const LinearBackwardParams& p, uint32_t seed) {
  const LinearParams& L = p.layer;
  return make_case(Op::kLinearBackward, linear_backward_text(p), L.rows, L.in, L.out,
                   linear_backward_work(L.rows, L.in, L.out, L.bias), [p, seed](Backend& be) {
                     return std::make_unique<LinearBackwardRun>(be, p, seed);
                   });
}

// ---- elementwise, minibatch discrimination, losses --------------------------------------

OpCase activation_backward_case(size_t n, Activation act, bool in_place, uint32_t seed) {
  struct Run : CaseRun {
    Backend& be;
    size_t n;
    Activation act;
    bool in_place;
    BackendBuffer<float> y, dy, dz;
    Run(Backend& b, size_t n_, Activation a, bool ip, uint32_t seed)
        : be(b), n(n_), act(a), in_place(ip) {
      // Y as the activation's output would be: tanh's in (-1, 1).
      const float range = act == Activation::kTanh ? 0.99f : 2.0f;
      y = put(be, random_values(n, seed, -range, range));
      dy = put(be, random_values(n, seed + 1));
      dz = put(be, nans(n));
    }
    float* out() const { return in_place ? dy.get() : dz.get(); }
    void run() override { be.activation_backward(y.get(), dy.get(), out(), n, act, 0.2f); }
    std::vector<CaseOutput> outputs() override { return {{"dZ", get(be, out(), n)}}; }
  };
  return make_case(Op::kActivationBackward,
                   text("n=%zu act=%s%s", n, act_name(act), in_place ? " in place" : ""),
                   static_cast<int>(n), 1, 1, activation_backward_work(n),
                   [=](Backend& be) { return std::make_unique<Run>(be, n, act, in_place, seed); });
}

// out = [A | B], split back into both halves and into A alone (B's target left untouched).
OpCase concat_split_case(int rows, int a, int b, uint32_t seed) {
  struct Run : CaseRun {
    Backend& be;
    int rows, a, b;
    size_t na, nb;
    BackendBuffer<float> A, B, O, A2, B2, A3, B3;
    Run(Backend& be_, int rows_, int a_, int b_, uint32_t seed) : be(be_), rows(rows_), a(a_), b(b_) {
      na = static_cast<size_t>(rows) * a, nb = static_cast<size_t>(rows) * b;
      A = put(be, random_values(na, seed));
      B = put(be, random_values(std::max<size_t>(nb, 1), seed + 1));
      O = put(be, nans(na + nb));
      A2 = put(be, nans(na)), B2 = put(be, nans(nb)), A3 = put(be, nans(na)),
      B3 = put(be, nans(nb));
    }
    void run() override {
      be.concat_cols(A.get(), B.get(), O.get(), rows, a, b);
      be.split_cols(O.get(), A2.get(), B2.get(), rows, a, b);
      be.split_cols(O.get(), A3.get(), nullptr, rows, a, b);
    }
    std::vector<CaseOutput> outputs() override {
      return {{"concat_cols", get(be, O.get(), na + nb)},
              {"split_cols A", get(be, A2.get(), na)},
              {"split_cols B", get(be, B2.get(), nb)},
              {"split_cols A only", get(be, A3.get(), na)},
              {"split_cols B untouched", get(be, B3.get(), nb)}};
    }
  };
  const OpShape shape{rows, a, b};
  return make_case(Op::kConcatSplitCols, text("rows=%d a=%d b=%d", rows, a, b), rows, a + b, 1,
                   op_work(Op::kConcatSplitCols, shape),
                   [=](Backend& be) { return std::make_unique<Run>(be, rows, a, b, seed); });
}

std::string mbd_text(int groups, int B, int K, int C) {
  return text("groups=%d B=%d K=%d C=%d", groups, B, K, C);
}

OpCase mbd_case(bool backward, int groups, int B, int K, int C, uint32_t seed) {
  struct Run : CaseRun {
    Backend& be;
    bool backward;
    int groups, B, K, C;
    size_t nm, no;
    BackendBuffer<float> m, o, d_o, dm;
    Run(Backend& be_, bool bw, int g, int b, int k, int c, uint32_t seed)
        : be(be_), backward(bw), groups(g), B(b), K(k), C(c) {
      nm = static_cast<size_t>(groups) * B * K * C, no = static_cast<size_t>(groups) * B * K;
      m = put(be, random_values(nm, seed));
      if (backward) {
        d_o = put(be, random_values(no, seed + 1));
        dm = put(be, nans(nm));
      } else {
        o = put(be, nans(no));
      }
    }
    void run() override {
      if (backward)
        be.mbd_backward(m.get(), d_o.get(), dm.get(), groups, B, K, C);
      else
        be.mbd_forward(m.get(), o.get(), groups, B, K, C);
    }
    // Each element sums over the B rows of its group.
    std::vector<CaseOutput> outputs() override {
      if (backward) return {{"dM", get(be, dm.get(), nm), B}};
      return {{"O", get(be, o.get(), no), B}};
    }
  };
  const Op op = backward ? Op::kMbdBackward : Op::kMbdForward;
  return make_case(op, mbd_text(groups, B, K, C), groups * B, K, C,
                   backward ? mbd_backward_work(groups, B, K, C) : mbd_forward_work(groups, B, K, C),
                   [=](Backend& be) {
                     return std::make_unique<Run>(be, backward, groups, B, K, C, seed);
                   });
}

// Logits wide enough for both branches of the stable forms and saturation; stats added onto
// nonzero values. want_dx / want_stats false pass nullptr (both are optional).
OpCase bce_case(int n, float target, float grad_scale, bool want_dx, bool want_stats,
                uint32_t seed) {
  struct Run : CaseRun {
    Backend& be;
    int n;
    float target, grad_scale;
    bool want_dx, want_stats;
    BackendBuffer<float> x, dx, stats;
    Run(Backend& be_, int n_, float t, float s, bool wd, bool ws, uint32_t seed)
        : be(be_), n(n_), target(t), grad_scale(s), want_dx(wd), want_stats(ws) {
      x = put(be, random_values(n, seed, -30.0f, 30.0f));
      dx = put(be, nans(n));
      stats = put(be, std::vector<float>{0.25f, 0.5f});
    }
    void run() override {
      be.bce_with_logits(x.get(), n, target, grad_scale, want_dx ? dx.get() : nullptr,
                         want_stats ? stats.get() : nullptr);
    }
    std::vector<CaseOutput> outputs() override {
      // dx stays NaN without it, stats at their start without them: compared all the same.
      return {{"dx", get(be, dx.get(), n)}, {"stats", get(be, stats.get(), 2)}};
    }
  };
  std::string params = text("n=%d t=%g scale=%g", n, target, grad_scale);
  if (!want_dx) params += " no-dx";
  if (!want_stats) params += " no-stats";
  return make_case(Op::kBceWithLogits, params, n, 1, 1, bce_work(n), [=](Backend& be) {
    return std::make_unique<Run>(be, n, target, grad_scale, want_dx, want_stats, seed);
  });
}

// The logit layer + BCE + backward: two targets, stats added onto random values, outputs
// poisoned; without param_grads dw and db must stay poisoned.
OpCase logit_bce_case(int groups, int B, int in, bool param_grads, uint32_t seed) {
  struct Run : CaseRun {
    Backend& be;
    int groups, B, in, rows;
    bool param_grads;
    size_t nx;
    BackendBuffer<float> x, w, b, logits, dl, dx, dw, db, stats;
    const float targets[2] = {0.9f, 0.0f};
    Run(Backend& be_, int g, int b_, int in_, bool pg, uint32_t seed)
        : be(be_), groups(g), B(b_), in(in_), rows(g * b_), param_grads(pg) {
      nx = static_cast<size_t>(rows) * in;
      x = put(be, random_values(nx, seed, -2.0f, 2.0f));
      w = put(be, random_values(in, seed + 1, -0.5f, 0.5f));
      b = put(be, random_values(1, seed + 2));
      stats = put(be, random_values(2 * groups, seed + 3));
      logits = put(be, nans(rows)), dl = put(be, nans(rows)), dx = put(be, nans(nx));
      dw = put(be, nans(in)), db = put(be, nans(1));
    }
    void run() override {
      be.logit_bce(x.get(), w.get(), b.get(), groups, B, in, targets, 1.0f, logits.get(),
                   dl.get(), dx.get(), param_grads ? dw.get() : nullptr,
                   param_grads ? db.get() : nullptr, stats.get());
    }
    std::vector<CaseOutput> outputs() override {
      return {{"logits", get(be, logits.get(), rows), in},
              {"dlogits", get(be, dl.get(), rows)},
              {"dX", get(be, dx.get(), nx)},
              {"stats", get(be, stats.get(), 2 * groups)},
              {"dw", get(be, dw.get(), in), rows},
              {"db", get(be, db.get(), 1), rows}};
    }
  };
  return make_case(Op::kLogitBce,
                   text("groups=%d B=%d in=%d%s", groups, B, in, param_grads ? " dw" : " no-dw"),
                   groups * B, in, 1, op_work(Op::kLogitBce, OpShape{B, in, 1, groups}),
                   [=](Backend& be) {
                     return std::make_unique<Run>(be, groups, B, in, param_grads, seed);
                   });
}

// ---- optimiser ---------------------------------------------------------------------------

// `steps` Adam steps from zero moments, each with fresh gradients; the op counts its step.
OpCase adam_case(size_t n, int steps, uint32_t seed) {
  struct Run : CaseRun {
    Backend& be;
    size_t n;
    int steps;
    AdamHyper hyper;
    BackendBuffer<float> p, g, m, v;
    BackendBuffer<int64_t> step;
    Run(Backend& be_, size_t n_, int s, uint32_t seed) : be(be_), n(n_), steps(s) {
      hyper.lr = 1e-3f;
      p = put(be, random_values(n, seed));
      g = put(be, random_values(n * steps, seed + 1, -0.1f, 0.1f));
      m = BackendBuffer<float>::zeroed(be, n), v = BackendBuffer<float>::zeroed(be, n);
      step = BackendBuffer<int64_t>::zeroed(be, 1);
    }
    void run() override {
      for (int t = 0; t < steps; ++t)
        be.adam_step(p.get(), g.get() + t * n, m.get(), v.get(), n, hyper, step.get());
    }
    std::vector<CaseOutput> outputs() override {
      return {{"params", get(be, p.get(), n)},
              {"m", get(be, m.get(), n)},
              {"v", get(be, v.get(), n)},
              {"step", get_as_float(be, step.get(), 1)}};
    }
  };
  return make_case(Op::kAdam, text("n=%zu steps=%d", n, steps), static_cast<int>(n), 1, 1,
                   WorkCount{steps * adam_work(n).flops, steps * adam_work(n).bytes},
                   [=](Backend& be) { return std::make_unique<Run>(be, n, steps, seed); });
}

// The EMA update through its warm-up (decay capped by (1 + t) / (10 + t)), at the cap, then
// once with the skip flag set (which must change nothing).
OpCase ema_case(size_t n, uint32_t seed) {
  struct Run : CaseRun {
    Backend& be;
    size_t n;
    BackendBuffer<float> ema, params, skip;
    BackendBuffer<int64_t> updates;
    Run(Backend& be_, size_t n_, uint32_t seed) : be(be_), n(n_) {
      ema = put(be, random_values(n, seed));
      params = put(be, random_values(5 * n, seed + 1));
      skip = put(be, std::vector<float>{1.0f});
      updates = BackendBuffer<int64_t>::zeroed(be, 1);
    }
    void run() override {
      for (int t = 0; t < 4; ++t) {
        const float decay = t < 3 ? 0.999f : 0.05f;  // the last one is capped
        be.ema_update(ema.get(), params.get() + t * n, n, decay, updates.get());
        be.increment(updates.get());
      }
      be.ema_update(ema.get(), params.get() + 4 * n, n, 0.999f, updates.get(), skip.get());
    }
    std::vector<CaseOutput> outputs() override { return {{"ema", get(be, ema.get(), n)}}; }
  };
  return make_case(Op::kEmaUpdate, text("n=%zu 4 updates + 1 skipped", n), static_cast<int>(n),
                   1, 1, op_work(Op::kEmaUpdate, OpShape{static_cast<int>(n)}),
                   [=](Backend& be) { return std::make_unique<Run>(be, n, seed); });
}

// ---- randomness and data -----------------------------------------------------------------

// step < 0: no counter (nullptr, meaning step 0).
OpCase gaussian_noise_case(size_t n, int64_t step) {
  struct Run : CaseRun {
    Backend& be;
    size_t n;
    bool null_step;
    BackendBuffer<float> out;
    BackendBuffer<int64_t> counter;
    Run(Backend& be_, size_t n_, int64_t step) : be(be_), n(n_), null_step(step < 0) {
      out = put(be, nans(n));
      counter = put(be, std::vector<int64_t>{step});
    }
    void run() override {
      be.gaussian_noise(out.get(), n, 0x1234567890abcdefull + n, 3,
                        null_step ? nullptr : counter.get());
    }
    std::vector<CaseOutput> outputs() override { return {{"noise", get(be, out.get(), n)}}; }
  };
  return make_case(Op::kGaussianNoise,
                   step < 0 ? text("n=%zu step=null", n)
                            : text("n=%zu step=%lld", n, static_cast<long long>(step)),
                   static_cast<int>(n), 1, 1,
                   op_work(Op::kGaussianNoise, OpShape{static_cast<int>(n)}),
                   [=](Backend& be) { return std::make_unique<Run>(be, n, step); });
}

// Two epochs' permutations of n_images, shuffled by gen.
std::vector<int32_t> two_permutations(int n_images, std::mt19937& gen) {
  std::vector<int32_t> perm(2 * static_cast<size_t>(n_images));
  std::iota(perm.begin(), perm.begin() + n_images, 0);
  std::iota(perm.begin() + n_images, perm.end(), 0);
  std::shuffle(perm.begin(), perm.begin() + n_images, gen);
  std::shuffle(perm.begin() + n_images, perm.end(), gen);
  return perm;
}

// gather_batch (labels false) or gather_labels (true) over `steps` steps of
// batches_per_step batches each, the step counter incremented between steps; every call
// writes its own slice of the output.
struct GatherParams {
  int rows, pixels, n_images;
  int steps, batches_per_step;
  int64_t batches_per_epoch;
  std::vector<int32_t> perm;  // (2, n_images)
  std::vector<uint8_t> data;  // (n_images, pixels) bytes, or (n_images) labels
};

OpCase gather_case(bool labels, const GatherParams& g, const std::string& params) {
  struct Run : CaseRun {
    Backend& be;
    bool labels;
    GatherParams g;
    size_t per_call, calls;
    BackendBuffer<uint8_t> data;
    BackendBuffer<int32_t> perm, label_out;
    BackendBuffer<float> out;
    BackendBuffer<int64_t> step;
    Run(Backend& be_, bool l, const GatherParams& g_) : be(be_), labels(l), g(g_) {
      per_call = static_cast<size_t>(g.rows) * (labels ? 1 : g.pixels);
      calls = static_cast<size_t>(g.steps) * g.batches_per_step;
      data = put(be, g.data);
      perm = put(be, g.perm);
      if (labels)
        label_out = put(be, std::vector<int32_t>(per_call * calls, -7));
      else
        out = put(be, nans(per_call * calls));
      step = BackendBuffer<int64_t>::zeroed(be, 1);
    }
    void run() override {
      for (int s = 0; s < g.steps; ++s) {
        for (int offset = 0; offset < g.batches_per_step; ++offset) {
          const size_t at = (static_cast<size_t>(s) * g.batches_per_step + offset) * per_call;
          if (labels)
            be.gather_labels(data.get(), perm.get(), g.n_images, g.rows, step.get(),
                             g.batches_per_step, offset, g.batches_per_epoch,
                             label_out.get() + at);
          else
            be.gather_batch(data.get(), perm.get(), g.n_images, g.pixels, g.rows, step.get(),
                            g.batches_per_step, offset, g.batches_per_epoch, out.get() + at);
        }
        be.increment(step.get());
      }
    }
    std::vector<CaseOutput> outputs() override {
      if (labels) return {{"labels", get_as_float(be, label_out.get(), per_call * calls)}};
      return {{"batches", get(be, out.get(), per_call * calls)}};
    }
  };
  const OpShape shape{g.rows, g.pixels, g.n_images};
  const Op op = labels ? Op::kGatherLabels : Op::kGatherBatch;
  const WorkCount one = op_work(op, shape);
  const double calls = static_cast<double>(g.steps) * g.batches_per_step;
  return make_case(op, params, g.rows, labels ? 1 : g.pixels, 1,
                   WorkCount{one.flops * calls, one.bytes * calls},
                   [labels, g](Backend& be) { return std::make_unique<Run>(be, labels, g); });
}

OpCase random_labels_case(size_t n, int64_t step, int classes) {
  struct Run : CaseRun {
    Backend& be;
    size_t n;
    int classes;
    bool null_step;
    BackendBuffer<int32_t> out;
    BackendBuffer<int64_t> counter;
    Run(Backend& be_, size_t n_, int64_t step, int c)
        : be(be_), n(n_), classes(c), null_step(step < 0) {
      out = put(be, std::vector<int32_t>(n, -7));
      counter = put(be, std::vector<int64_t>{step});
    }
    void run() override {
      be.random_labels(out.get(), n, classes, 77 + n, kLabelStreamBase + 1,
                       null_step ? nullptr : counter.get());
    }
    std::vector<CaseOutput> outputs() override {
      return {{"labels", get_as_float(be, out.get(), n)}};
    }
  };
  return make_case(Op::kRandomLabels,
                   text("n=%zu step=%lld classes=%d", n, static_cast<long long>(step), classes),
                   static_cast<int>(n), 1, 1,
                   op_work(Op::kRandomLabels, OpShape{static_cast<int>(n)}),
                   [=](Backend& be) { return std::make_unique<Run>(be, n, step, classes); });
}

// Labels r % 13 - 1: valid ones and out-of-range ones (-1, 10, 11: NaN rows).
OpCase one_hot_case(int rows, int classes) {
  struct Run : CaseRun {
    Backend& be;
    int rows, classes;
    BackendBuffer<int32_t> labels;
    BackendBuffer<float> out;
    Run(Backend& be_, int r, int c) : be(be_), rows(r), classes(c) {
      std::vector<int32_t> y(rows);
      for (int i = 0; i < rows; ++i) y[i] = i % 13 - 1;
      labels = put(be, y);
      out = put(be, nans(static_cast<size_t>(rows) * classes));
    }
    void run() override { be.one_hot(labels.get(), out.get(), rows, classes); }
    std::vector<CaseOutput> outputs() override {
      return {{"one_hot", get(be, out.get(), static_cast<size_t>(rows) * classes)}};
    }
  };
  return make_case(Op::kOneHot, text("rows=%d classes=%d", rows, classes), rows, classes, 1,
                   op_work(Op::kOneHot, OpShape{rows, classes}),
                   [=](Backend& be) { return std::make_unique<Run>(be, rows, classes); });
}

// Non-finite values first, last, in the middle and every 99991st, counted twice onto 2 (the
// scratch of a device count must reset itself between calls).
OpCase count_nonfinite_case(size_t n) {
  struct Run : CaseRun {
    Backend& be;
    size_t n;
    BackendBuffer<float> x, count;
    Run(Backend& be_, size_t n_) : be(be_), n(n_) {
      std::vector<float> v = random_values(n, static_cast<uint32_t>(n));
      v[0] = NAN;
      if (n > 1) v[n - 1] = INFINITY;
      if (n > 2) v[n / 2] = -INFINITY;
      for (size_t i = 3; i < n; i += 99991) v[i] = NAN;
      x = put(be, v);
      count = put(be, std::vector<float>{2.0f});
    }
    void run() override {
      for (int rep = 0; rep < 2; ++rep) be.count_nonfinite(x.get(), n, count.get());
    }
    std::vector<CaseOutput> outputs() override { return {{"count", get(be, count.get(), 1)}}; }
  };
  const WorkCount one = op_work(Op::kCountNonfinite, OpShape{static_cast<int>(n)});
  return make_case(Op::kCountNonfinite, text("n=%zu twice", n), static_cast<int>(n), 1, 1,
                   WorkCount{2 * one.flops, 2 * one.bytes},
                   [=](Backend& be) { return std::make_unique<Run>(be, n); });
}

// ---- the test table ----------------------------------------------------------------------

const Activation kActivations[] = {Activation::kNone, Activation::kLeakyRelu, Activation::kTanh};

std::vector<OpCase> linear_forward_test_cases(bool emulated) {
  std::vector<OpCase> cases;
  uint32_t seed = 1;
  const std::vector<OpShape>& shapes = op_check(Op::kLinearForward).shapes;
  for (size_t s = 0; s < shapes.size(); ++s) {
    const OpShape& sh = shapes[s];
    const double macs = static_cast<double>(sh.rows) * sh.in * sh.out;
    // 2048x784x1024 is too slow to emulate; 700x37x780 and 705x52x777 still meet partial
    // tiles.
    if (emulated && macs > 1e9) continue;
    // All activations with and without bias on the small shapes; one (rotating) activation
    // with bias on the big ones, to keep the CPU reference's time down.
    const bool big = macs > 2e7;
    for (int a = 0; a < 3; ++a) {
      if (big && a != static_cast<int>(s % 3)) continue;
      for (const bool bias : {true, false}) {
        if (big && !bias) continue;
        cases.push_back(
            linear_forward_case({sh.rows, sh.in, sh.out, kActivations[a], 0.2f, bias}, seed));
        seed += 3;
      }
    }
  }
  // Pointers offset by one float (not 16-byte aligned).
  const LinearParams unaligned{37, 100, 68, Activation::kLeakyRelu, 0.2f, true};
  cases.push_back(make_case(Op::kLinearForward, linear_text(unaligned) + " unaligned", 37, 100,
                            68, linear_forward_work(37, 100, 68, true), [=](Backend& be) {
                              return std::make_unique<UnalignedLinearRun>(be, unaligned, 7);
                            }));
  return cases;
}

// The fused backward for every activation, overwriting and accumulating dX, on packed and on
// strided rows (X/dX and Y/dY inside wider buffers, as the discriminator's [h | o] features);
// then each output alone and dW with db (the others nullptr).
std::vector<OpCase> linear_backward_test_cases() {
  std::vector<OpCase> cases;
  uint32_t seed = 200;
  const std::vector<OpShape>& shapes = op_check(Op::kLinearBackward).shapes;
  for (size_t s = 0; s < shapes.size(); ++s) {
    const OpShape& sh = shapes[s];
    const double macs = static_cast<double>(sh.rows) * sh.in * sh.out;
    if (macs > 2e8) continue;  // the CPU reference's time
    const bool big = macs > 2e7;
    for (int a = 0; a < 3; ++a) {
      if (big && a != static_cast<int>(s % 3)) continue;
      for (const bool strided : {false, true}) {
        if (big && strided) continue;
        for (const bool accumulate : {false, true}) {
          LinearBackwardParams p;
          p.layer = {sh.rows, sh.in, sh.out, kActivations[a], 0.2f, true};
          p.accumulate = accumulate;
          if (strided) p.ld = RowStrides{sh.in + 3, sh.out + 5};
          cases.push_back(linear_backward_case(p, seed));
          seed += 5;
        }
      }
    }
  }
  for (int which = 0; which < 3; ++which) {
    LinearBackwardParams p;
    p.layer = {33, 20, 9, Activation::kTanh, 0.2f, true};
    p.want_dx = which == 0, p.want_dw = which >= 1, p.want_db = which == 2;
    cases.push_back(linear_backward_case(p, 1));
  }
  return cases;
}

std::vector<OpCase> linear_test_cases(Op op, bool emulated) {
  return op == Op::kLinearForward ? linear_forward_test_cases(emulated)
                                  : linear_backward_test_cases();
}

}  // namespace

// ---- the linear runs ---------------------------------------------------------------------

LinearForwardRun::LinearForwardRun(Backend& be, const LinearParams& params, uint32_t seed)
    : backend(be), p(params) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(p.in));
  x = put(be, random_values(static_cast<size_t>(p.rows) * p.in, seed));
  w = put(be, random_values(static_cast<size_t>(p.out) * p.in, seed + 1, -scale, scale));
  b = put(be, random_values(p.out, seed + 2, -scale, scale));
  y = put(be, nans(static_cast<size_t>(p.rows) * p.out));
}

void LinearForwardRun::run() {
  backend.linear_forward(x.get(), w.get(), bias(), y.get(), p.rows, p.in, p.out, p.act, p.slope);
}

std::vector<CaseOutput> LinearForwardRun::outputs() {
  return {{"Y", get(backend, y.get(), static_cast<size_t>(p.rows) * p.out), p.in}};
}

LinearBackwardRun::LinearBackwardRun(Backend& be, const LinearBackwardParams& params,
                                     uint32_t seed)
    : backend(be), p(params) {
  const LinearParams& L = p.layer;
  ldx = p.ld.x != 0 ? p.ld.x : L.in;
  ldy = p.ld.y != 0 ? p.ld.y : L.out;
  const float ws = 1.0f / std::sqrt(static_cast<float>(L.in));
  // dY scaled so that dW's sums over rows stay O(1), like dX's sums over out.
  const float zs = 1.0f / std::sqrt(static_cast<float>(std::max(L.rows, L.out)));
  const size_t nx = static_cast<size_t>(L.rows) * ldx, ny = static_cast<size_t>(L.rows) * ldy,
               nw = static_cast<size_t>(L.out) * L.in;
  x = put(be, random_values(nx, seed));
  w = put(be, random_values(nw, seed + 1, -ws, ws));
  // Y as an activation's output would be (tanh's in (-1, 1)); LeakyReLU reads its sign.
  y = put(be, random_values(ny, seed + 2, -0.9f, 0.9f));
  dy = put(be, random_values(ny, seed + 3, -zs, zs));
  // dX: random (accumulated into, and its padding columns), poisoned where it is overwritten.
  std::vector<float> dx_start = random_values(nx, seed + 4);
  if (!p.accumulate || !p.want_dx)
    for (int r = 0; r < L.rows; ++r)
      for (int c = 0; c < L.in; ++c) dx_start[static_cast<size_t>(r) * ldx + c] = NAN;
  dx = put(be, dx_start);
  dw = put(be, nans(nw));
  db = put(be, nans(L.out));
}

void LinearBackwardRun::run() {
  const LinearParams& L = p.layer;
  backend.linear_backward(x.get(), w.get(), y.get(), dy.get(), p.want_dx ? dx.get() : nullptr,
                          p.want_dw ? dw.get() : nullptr,
                          p.want_dw && p.want_db ? db.get() : nullptr, L.rows, L.in, L.out, L.act,
                          L.slope, p.accumulate, p.ld);
}

std::vector<CaseOutput> LinearBackwardRun::outputs() {
  const LinearParams& L = p.layer;
  // dX sums over out, dW and db over rows.
  return {{"dX", get(backend, dx.get(), static_cast<size_t>(L.rows) * ldx), L.out},
          {"dW", get(backend, dw.get(), static_cast<size_t>(L.out) * L.in), L.rows},
          {"db", get(backend, db.get(), L.out), L.rows}};
}

// ---- the tables --------------------------------------------------------------------------

std::vector<OpCase> op_test_cases(Op op, bool emulated) {
  std::vector<OpCase> cases;
  const std::vector<OpShape>& shapes = op_check(op).shapes;
  uint32_t seed = 1000 * (static_cast<uint32_t>(op) + 1);
  switch (op) {
    case Op::kLinearForward:
    case Op::kLinearBackward:
      return linear_test_cases(op, emulated);
    case Op::kActivationBackward:
      for (const OpShape& s : shapes)
        for (const Activation act : kActivations)
          for (const bool in_place : {false, true}) {
            cases.push_back(activation_backward_case(s.rows, act, in_place, seed));
            seed += 2;
          }
      break;
    case Op::kMbdForward:
    case Op::kMbdBackward:
      // B = 1 (no pairs), padded and exact C, ragged K, the model's largest call.
      for (const OpShape& s : shapes) {
        cases.push_back(mbd_case(op == Op::kMbdBackward, s.groups, s.rows, s.in, s.out, seed));
        seed += 2;
      }
      break;
    case Op::kBceWithLogits:
      for (const OpShape& s : shapes)
        for (const float target : {0.0f, 0.9f, 1.0f})
          for (const float grad_scale : {1.0f, -0.5f})
            cases.push_back(bce_case(s.rows, target, grad_scale, true, true, seed++));
      // A null gradient and null stats are both allowed.
      cases.push_back(bce_case(64, 1.0f, 1.0f, false, true, seed++));
      cases.push_back(bce_case(64, 1.0f, 1.0f, true, false, seed++));
      break;
    case Op::kAdam:
      for (const OpShape& s : shapes) {
        cases.push_back(adam_case(static_cast<size_t>(s.rows), 3, seed));
        seed += 2;
      }
      break;
    case Op::kEmaUpdate:
      for (const OpShape& s : shapes) {
        cases.push_back(ema_case(static_cast<size_t>(s.rows), seed));
        seed += 2;
      }
      break;
    case Op::kGaussianNoise:
      for (const OpShape& s : shapes)
        for (const int64_t step : {int64_t{-1}, int64_t{0}, int64_t{7}, int64_t{123456789012}})
          cases.push_back(gaussian_noise_case(static_cast<size_t>(s.rows), step));
      break;
    case Op::kGatherBatch: {
      // Steps of 2 batches across several epoch boundaries (both permutation slots); 99 of
      // 100 images per epoch.
      const OpShape& s = shapes.at(0);
      std::mt19937 gen(42);
      GatherParams g{s.rows, s.in, s.out, 25, 2, s.out / s.rows, {}, {}};
      g.data.resize(static_cast<size_t>(g.n_images) * g.pixels);
      for (size_t i = 0; i < g.data.size(); ++i)
        g.data[i] = static_cast<uint8_t>(i < 256 ? i : gen());
      g.perm = two_permutations(g.n_images, gen);
      cases.push_back(gather_case(false, g, text("rows=%d pixels=%d images=%d 25 steps of 2",
                                                 g.rows, g.pixels, g.n_images)));
      // A corrupt permutation (indices -1, n_images and -7): NaN rows on both.
      GatherParams bad{4, 300, 8, 1, 4, 2, {3, -1, 8, 0, 1, 2, 3, 4, 5, 6, 7, -7, 0, 1, 2, 3}, {}};
      bad.data.resize(static_cast<size_t>(bad.n_images) * bad.pixels);
      for (size_t i = 0; i < bad.data.size(); ++i) bad.data[i] = static_cast<uint8_t>(i * 7);
      cases.push_back(gather_case(false, bad, "rows=4 pixels=300 images=8 out-of-range indices"));
      break;
    }
    case Op::kGatherLabels: {
      // The same batches as gather_batch's, with a corrupt index (-3: label -1).
      const OpShape& s = shapes.at(0);
      std::mt19937 gen(43);
      GatherParams g{s.rows, 1, s.out, 25, 2, s.out / s.rows, {}, {}};
      g.data.resize(g.n_images);
      for (uint8_t& label : g.data) label = static_cast<uint8_t>(gen() % 10);
      g.perm = two_permutations(g.n_images, gen);
      g.perm[5] = -3;
      cases.push_back(gather_case(
          true, g, text("rows=%d images=%d 25 steps of 2, index -3", g.rows, g.n_images)));
      break;
    }
    case Op::kRandomLabels:
      for (const OpShape& s : shapes)
        for (const int64_t step : {int64_t{-1}, int64_t{0}, int64_t{123456789012}})
          for (const int classes : {1, 10, 37})
            cases.push_back(random_labels_case(static_cast<size_t>(s.rows), step, classes));
      break;
    case Op::kOneHot:
      for (const OpShape& s : shapes) cases.push_back(one_hot_case(s.rows, s.in));
      break;
    case Op::kConcatSplitCols:
      for (const OpShape& s : shapes) cases.push_back(concat_split_case(s.rows, s.in, s.out, seed++));
      break;
    case Op::kCountNonfinite:
      for (const OpShape& s : shapes) cases.push_back(count_nonfinite_case(s.rows));
      break;
    case Op::kLogitBce:
      // 1 row, odd sizes, the D and G updates' calls at batch 64, the D update's at 1024;
      // with and without weight gradients.
      for (const OpShape& s : shapes)
        for (const bool param_grads : {true, false}) {
          cases.push_back(logit_bce_case(s.groups, s.rows, s.in, param_grads, seed));
          seed += 4;
        }
      break;
  }
  if (cases.empty()) throw std::invalid_argument(std::string("op_test_cases: no cases for ") + op_check(op).name);
  return cases;
}

std::vector<LayerShape> model_layer_shapes(const ModelShape& shape, int batch) {
  std::vector<LayerShape> layers;
  for (const LayerSpec& spec : gan_layers(shape)) {
    // The D step runs real and fake through D in one pass: 2 x batch rows.
    const int rows = spec.net == Net::kGenerator ? batch : 2 * batch;
    layers.push_back(
        {spec.name, rows, spec.in, spec.out, spec.has_bias, static_cast<int>(spec.act)});
  }
  return layers;
}

std::vector<OpCase> op_bench_cases(const ModelShape& shape, int batch) {
  std::vector<OpCase> cases;
  auto add = [&](OpCase c, const std::string& layer) {
    c.layer = layer;
    cases.push_back(std::move(c));
  };
  for (const LayerShape& L : model_layer_shapes(shape, batch)) {
    const Activation act = static_cast<Activation>(L.act);
    const LinearParams p{L.rows, L.in, L.out, act, shape.leaky_slope, L.bias};
    add(linear_forward_case(p, 1), L.name);
    LinearBackwardParams bp;
    bp.layer = p;
    bp.want_db = L.bias;
    add(linear_backward_case(bp, 11), L.name);
    if (act != Activation::kNone) {
      OpCase c = activation_backward_case(static_cast<size_t>(L.rows) * L.out, act, false, 21);
      c.rows = L.rows, c.in = L.out, c.out = 1;  // shown as the layer's (rows x cols)
      add(std::move(c), L.name);
    }
  }
  const int groups = 2;  // real and fake
  if (shape.mbd_kernels > 0) {
    add(mbd_case(false, groups, batch, shape.mbd_kernels, shape.mbd_dims, 31), "D.mbd");
    add(mbd_case(true, groups, batch, shape.mbd_kernels, shape.mbd_dims, 31), "D.mbd");
  }
  add(bce_case(groups * batch, 1.0f, 1.0f, true, true, 41), "D.loss");
  // D's logit layer on [h | o] with its loss and backward (the D update's call).
  const int logit_in = shape.hidden_d.back() + shape.mbd_kernels;
  add(logit_bce_case(groups, batch, logit_in, true, 51), "D.out");
  // Adam's cost does not depend on the batch; it is listed with each batch all the same so
  // every batch's table is a complete step.
  const std::vector<LayerSpec> layers = gan_layers(shape);
  add(adam_case(parameter_count(layers, Net::kGenerator), 1, 61), "G.params");
  add(adam_case(parameter_count(layers, Net::kDiscriminator), 1, 71), "D.params");
  return cases;
}

std::string compare_case_outputs(const OpCase& c, const std::vector<CaseOutput>& got,
                                 const std::vector<CaseOutput>& want, double* max_abs_error,
                                 bool tf32) {
  if (got.size() != want.size())
    return c.name() + ": " + std::to_string(got.size()) + " outputs, expected " +
           std::to_string(want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const Tolerance tol = op_tolerance(c.op, want[i].reduction, max_abs(want[i].values), tf32);
    const std::string why =
        check_close(got[i].values, want[i].values, tol, c.name() + ": " + want[i].name,
                    max_abs_error);
    if (!why.empty()) return why;
  }
  return "";
}

std::string check_case(const OpCase& c, Backend& reference, Backend& candidate,
                       double* max_abs_error) {
  std::unique_ptr<CaseRun> want = c.make(reference), got = c.make(candidate);
  want->run();
  got->run();
  return compare_case_outputs(c, got->outputs(), want->outputs(), max_abs_error);
}

}  // namespace mnistgan
