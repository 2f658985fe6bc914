// config.cpp: validation and JSON (de)serialisation of TrainConfig.
#include "core/config.h"

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <type_traits>

#include "core/json_integer.h"

namespace mnistgan {

namespace {
void require(bool ok, const std::string& flag, const std::string& what) {
  if (!ok) throw std::invalid_argument(flag + ": " + what);
}
}  // namespace

void validate_adam_flags(float lr, float lr_d, float lr_g, float beta1, float beta2) {
  auto positive_finite = [](float x) { return std::isfinite(x) && x > 0.0f; };
  require(positive_finite(lr), "--lr", "must be a positive number");
  // -1 is the "not given: use --lr" sentinel; any other value must be a usable rate.
  require(lr_d == -1.0f || positive_finite(lr_d), "--lr-d", "must be a positive number");
  require(lr_g == -1.0f || positive_finite(lr_g), "--lr-g", "must be a positive number");
  require(std::isfinite(beta1) && beta1 >= 0.0f && beta1 < 1.0f, "--b1", "must be in [0, 1)");
  require(std::isfinite(beta2) && beta2 >= 0.0f && beta2 < 1.0f, "--b2", "must be in [0, 1)");
}

void validate_mbd_flags(int kernels, int dims) {
  require(kernels >= 0 && kernels <= 1024, "--mbd-kernels", "must be between 0 (off) and 1024");
  require(dims >= 1 && dims <= 64, "--mbd-dims", "must be between 1 and 64");
}

void TrainConfig::validate() const {
  validate_device_flag(device);
  require(epochs >= 1, "--epochs", "must be at least 1 (got " + std::to_string(epochs) + ")");
  require(steps >= 0, "--steps", "must be at least 1 (got " + std::to_string(steps) + ")");
  require(batch_size >= 2 && batch_size <= 4096, "--batch-size",
          "must be between 2 and 4096 (got " + std::to_string(batch_size) + ")");
  require(latent_dim >= 1 && latent_dim <= 4096, "--latent-dim", "must be between 1 and 4096");
  require(!hidden_g.empty() && hidden_g.size() <= 16, "--hidden-g",
          "give 1 to 16 comma-separated widths, e.g. 256,512,1024");
  require(!hidden_d.empty() && hidden_d.size() <= 16, "--hidden-d",
          "give 1 to 16 comma-separated widths, e.g. 1024,512,256");
  for (int w : hidden_g)
    require(w >= 1 && w <= 16384, "--hidden-g", "every width must be between 1 and 16384");
  for (int w : hidden_d)
    require(w >= 1 && w <= 16384, "--hidden-d", "every width must be between 1 and 16384");
  validate_mbd_flags(mbd_kernels, mbd_dims);
  validate_adam_flags(lr, lr_d, lr_g, beta1, beta2);
  require(std::isfinite(real_label) && real_label > 0.0f && real_label <= 1.0f, "--real-label",
          "must be in (0, 1]; 0.9 is the usual one-sided smoothing");
  require(d_steps >= 1 && d_steps <= 100, "--d-steps", "must be between 1 and 100");
  require(std::isfinite(d_dropout) && d_dropout >= 0.0f && d_dropout < 1.0f, "--d-dropout",
          "must be in [0, 1): 0 turns it off, 0.5 is Goodfellow et al. 2014's");
  require(lr_decay == "none" || lr_decay == "linear", "--lr-decay",
          "unknown schedule '" + lr_decay + "'; expected none or linear");
  require(log_every >= 1, "--log-every", "must be at least 1");
  require(sample_every >= 0, "--sample-every", "must be 0 (once per epoch) or positive");
  require(checkpoint_every >= 0, "--checkpoint-every", "must be 0 (once per epoch) or positive");
  require(keep_checkpoints >= 1, "--keep-checkpoints", "must be at least 1");
  require(eval_every >= 0, "--eval-every", "must be 0 (off) or a number of steps");
  require(eval_samples >= 10 && eval_samples <= 10000, "--eval-samples",
          "must be between 10 and 10000 (the MNIST test set's size)");
  require(std::isfinite(ema_decay) && ema_decay >= 0.0f && ema_decay < 1.0f, "--ema-decay",
          "must be in [0, 1): 0 turns the EMA generator off, 0.999 is usual");
  require(nan_policy == "stop" || nan_policy == "skip-step", "--nan-policy",
          "unknown policy '" + nan_policy + "'; expected stop or skip-step");
}

ModelShape model_shape_of(const TrainConfig& c, int image_pixels) {
  ModelShape s;
  s.image_pixels = image_pixels;
  s.latent_dim = c.latent_dim;
  s.hidden_g = c.hidden_g;
  s.hidden_d = c.hidden_d;
  s.mbd_kernels = c.mbd_kernels;
  s.mbd_dims = c.mbd_dims;
  s.leaky_slope = c.leaky_slope;
  s.classes = c.conditional ? kDigitClasses : 0;
  return s;
}

void to_json(nlohmann::json& j, const TrainConfig& c) {
  j = nlohmann::json{{"data_dir", c.data_dir},
                     {"out_dir", c.out_dir},
                     {"device", c.device},
                     {"epochs", c.epochs},
                     {"steps", c.steps},
                     {"batch_size", c.batch_size},
                     {"latent_dim", c.latent_dim},
                     {"hidden_g", c.hidden_g},
                     {"hidden_d", c.hidden_d},
                     {"mbd_kernels", c.mbd_kernels},
                     {"mbd_dims", c.mbd_dims},
                     {"leaky_slope", c.leaky_slope},
                     {"lr", c.lr},
                     {"lr_d", c.lr_d},
                     {"lr_g", c.lr_g},
                     {"beta1", c.beta1},
                     {"beta2", c.beta2},
                     {"adam_eps", c.adam_eps},
                     {"real_label", c.real_label},
                     {"d_steps", c.d_steps},
                     {"seed", c.seed},
                     {"nan_policy", c.nan_policy},
                     {"ema_decay", c.ema_decay},
                     {"raw_generator", c.raw_generator},
                     {"log_every", c.log_every},
                     {"sample_every", c.sample_every},
                     {"checkpoint_every", c.checkpoint_every},
                     {"keep_checkpoints", c.keep_checkpoints},
                     {"cuda_graph", c.cuda_graph},
                     {"eval_every", c.eval_every},
                     {"classifier", c.classifier},
                     {"eval_samples", c.eval_samples},
                     {"final_eval", c.final_eval}};
  // Written only when set: an unconditional run's checkpoint stays byte for byte what
  // earlier versions wrote, and a missing key reads as unconditional.
  if (c.conditional) j["conditional"] = true;
  // Likewise written only when not the default, so default checkpoints keep their bytes.
  if (c.lr_decay != "none") j["lr_decay"] = c.lr_decay;
  // Always written: versions before dropout became the default (0.3) wrote it only when not
  // 0, so a checkpoint without the key was trained without dropout (from_json).
  j["d_dropout"] = c.d_dropout;
}

// Missing keys keep their defaults, so checkpoints from older versions still load.
void from_json(const nlohmann::json& j, TrainConfig& c) {
  // Integer fields must be JSON integers that fit (json_integer.h): nlohmann's get_to would
  // convert 1e99 to an int with a plain cast, undefined behaviour. Anything else throws
  // std::invalid_argument naming the key.
  auto integer = [](const nlohmann::json& v, const char* key, auto& field) {
    const auto value = json_integer<std::decay_t<decltype(field)>>(v);
    if (!value)
      throw std::invalid_argument(std::string("config field '") + key + "' is " + v.dump() +
                                  ", not an integer in range (corrupt or hand-edited file?)");
    field = *value;
  };
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) return;
    const nlohmann::json& v = j.at(key);
    using Field = std::decay_t<decltype(field)>;
    if constexpr (std::is_integral_v<Field> && !std::is_same_v<Field, bool>) {
      integer(v, key, field);
    } else if constexpr (std::is_same_v<Field, std::vector<int>>) {
      if (!v.is_array())
        throw std::invalid_argument(std::string("config field '") + key + "' is not a list");
      field.assign(v.size(), 0);
      for (size_t i = 0; i < v.size(); ++i) integer(v[i], key, field[i]);
    } else {
      v.get_to(field);
    }
  };
  get("data_dir", c.data_dir);
  get("out_dir", c.out_dir);
  get("device", c.device);
  get("epochs", c.epochs);
  get("steps", c.steps);
  get("batch_size", c.batch_size);
  get("latent_dim", c.latent_dim);
  get("hidden_g", c.hidden_g);
  get("hidden_d", c.hidden_d);
  get("mbd_kernels", c.mbd_kernels);
  get("mbd_dims", c.mbd_dims);
  get("leaky_slope", c.leaky_slope);
  get("conditional", c.conditional);
  get("lr", c.lr);
  get("lr_d", c.lr_d);
  get("lr_g", c.lr_g);
  get("beta1", c.beta1);
  get("beta2", c.beta2);
  get("adam_eps", c.adam_eps);
  get("real_label", c.real_label);
  get("lr_decay", c.lr_decay);
  // A missing key is a checkpoint from before dropout became the default: trained without.
  c.d_dropout = 0.0f;
  get("d_dropout", c.d_dropout);
  get("d_steps", c.d_steps);
  get("seed", c.seed);
  get("nan_policy", c.nan_policy);
  get("ema_decay", c.ema_decay);
  get("raw_generator", c.raw_generator);
  get("log_every", c.log_every);
  get("sample_every", c.sample_every);
  get("checkpoint_every", c.checkpoint_every);
  get("keep_checkpoints", c.keep_checkpoints);
  get("cuda_graph", c.cuda_graph);
  get("eval_every", c.eval_every);
  get("classifier", c.classifier);
  get("eval_samples", c.eval_samples);
  get("final_eval", c.final_eval);
}

}  // namespace mnistgan
