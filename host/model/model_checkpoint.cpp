// model_checkpoint.cpp: see model_checkpoint.h.
#include "model/model_checkpoint.h"

#include <utility>
#include <vector>

namespace mnistgan {

namespace {
const char* kNetNames[2] = {"G", "D"};
const char* const kEmaSuffix = "@ema";  // G's EMA weights: "<name>@ema"
}  // namespace

void store_model(Backend& backend, Gan& gan, Checkpoint& ck) {
  Network* nets[2] = {&gan.generator(), &gan.discriminator()};
  for (int n = 0; n < 2; ++n) {
    Network& net = *nets[n];
    std::vector<float> params(net.size), m(net.size), v(net.size);
    backend.to_host(params.data(), net.params, net.size * sizeof(float));
    backend.to_host(m.data(), net.adam_m, net.size * sizeof(float));
    backend.to_host(v.data(), net.adam_v, net.size * sizeof(float));
    int64_t adam_step = 0;
    backend.to_host(&adam_step, net.adam_step, sizeof(adam_step));
    ck.header["adam_step"][kNetNames[n]] = adam_step;
    for (const auto& [suffix, source] : {std::pair<const char*, std::vector<float>*>{"", &params},
                                         {"@adam_m", &m},
                                         {"@adam_v", &v}}) {
      for (const ParamTensor& t : net.tensors) {
        CheckpointTensor out{t.name + suffix, t.shape, {}};
        out.data.assign(source->begin() + t.offset, source->begin() + t.offset + t.size);
        ck.tensors.push_back(std::move(out));
      }
    }
  }
  if (gan.has_ema()) {
    const Network& g = gan.generator();
    std::vector<float> ema(g.size);
    backend.to_host(ema.data(), gan.generator_ema(), g.size * sizeof(float));
    for (const ParamTensor& t : g.tensors) {
      CheckpointTensor out{t.name + kEmaSuffix, t.shape, {}};
      out.data.assign(ema.begin() + t.offset, ema.begin() + t.offset + t.size);
      ck.tensors.push_back(std::move(out));
    }
  }
}

bool checkpoint_has_ema(const Checkpoint& ck) {
  const std::string suffix = kEmaSuffix;
  for (const CheckpointTensor& t : ck.tensors)
    if (t.name.size() > suffix.size() &&
        t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return true;
  return false;
}

namespace {
// net's tensors "<name><suffix>" from the checkpoint as one flat buffer in net's layout.
std::vector<float> read_network_tensors(const Checkpoint& ck, const Network& net,
                                        const std::string& suffix, const std::string& source) {
  std::vector<float> flat(net.size);
  for (const ParamTensor& t : net.tensors) {
    const std::string name = t.name + suffix;
    const CheckpointTensor* found = ck.find(name);
    if (found == nullptr)
      throw CheckpointError(source + ": tensor '" + name +
                            "' is missing (checkpoint from a different model?)");
    if (found->shape != t.shape) {
      auto str = [](const std::vector<int64_t>& s) {
        std::string out = "(";
        for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
        return out + ")";
      };
      throw CheckpointError(source + ": tensor '" + name + "' has shape " + str(found->shape) +
                            " but the model expects " + str(t.shape) +
                            " (check --hidden-g/--hidden-d/--latent-dim/--mbd-*)");
    }
    std::copy(found->data.begin(), found->data.end(), flat.begin() + t.offset);
  }
  return flat;
}
}  // namespace

bool restore_model(Backend& backend, Gan& gan, const Checkpoint& ck, const std::string& source,
                   bool with_optimizer) {
  Network* nets[2] = {&gan.generator(), &gan.discriminator()};
  for (int n = 0; n < 2; ++n) {
    Network& net = *nets[n];
    const std::vector<float> params = read_network_tensors(ck, net, "", source);
    backend.to_backend(net.params, params.data(), net.size * sizeof(float));
    if (with_optimizer) {
      const std::vector<float> m = read_network_tensors(ck, net, "@adam_m", source);
      const std::vector<float> v = read_network_tensors(ck, net, "@adam_v", source);
      backend.to_backend(net.adam_m, m.data(), net.size * sizeof(float));
      backend.to_backend(net.adam_v, v.data(), net.size * sizeof(float));
      const int64_t adam_step = header_int(ck.header.value("adam_step", nlohmann::json::object()),
                                           kNetNames[n], 0, source);
      backend.to_backend(net.adam_step, &adam_step, sizeof(adam_step));
    }
  }
  if (!checkpoint_has_ema(ck)) return false;
  const std::vector<float> ema = read_network_tensors(ck, gan.generator(), kEmaSuffix, source);
  gan.enable_ema();
  backend.to_backend(gan.generator_ema(), ema.data(), ema.size() * sizeof(float));
  return true;
}

}  // namespace mnistgan
