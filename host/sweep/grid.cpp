// grid.cpp: see grid.h.
#include "sweep/grid.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include "cli/flags.h"  // add_train_flags
#include "io/atomic_file.h"  // read_file

namespace mnistgan {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

namespace {

// Grid files are small; a larger one is a mistake (a checkpoint passed by accident).
constexpr size_t kMaxGridBytes = 1 << 20;

// Flags the sweep sets for every run itself.
const std::map<std::string, std::string>& sweep_owned_keys() {
  static const std::map<std::string, std::string> keys = {
      {"out", "each run writes <sweep --out>/runs/<name>"},
      {"resume", "a rerun of the same sweep resumes every run from its latest checkpoint"},
      {"device", "give --device to `mnistgan sweep`"}};
  return keys;
}

// The train flag parser on a scratch config. Owns its CLI::App (CLI11 apps are not copyable).
struct TrainFlagParser {
  TrainConfig config;
  CLI::App app{"train flags of a sweep run", "mnistgan sweep"};
  TrainFlagParser() { add_train_flags(app, config); }

  // Parses `args` (flags and values, no program name); throws std::invalid_argument with
  // CLI11's message or TrainConfig::validate()'s.
  void parse(std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());  // CLI11 takes the vector back to front
    try {
      app.parse(args);
    } catch (const CLI::ParseError& e) {
      throw std::invalid_argument(e.what());
    }
  }
};

bool is_known_flag(const std::string& key) {
  static const std::set<std::string> known = [] {
    TrainFlagParser parser;
    std::set<std::string> names;
    for (const CLI::Option* option : parser.app.get_options())
      for (const std::string& name : option->get_lnames()) names.insert(name);
    return names;
  }();
  return known.count(key) > 0;
}

// One JSON value as command-line text: numbers as JSON writes them (shortest round trip),
// strings as they are, lists comma-joined. Throws naming `where` for objects and nulls.
std::string value_text(const ordered_json& value, const std::string& where, bool in_list = false) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number()) return value.dump();
  if (value.is_array() && !in_list) {
    std::string text;
    for (size_t i = 0; i < value.size(); ++i)
      text += (i ? "," : "") + value_text(value[i], where + "[" + std::to_string(i) + "]", true);
    return text;
  }
  throw std::invalid_argument(where + ": " + value.dump() +
                              " is not a value of a train flag (a number, a string, true/false, "
                              "or a list of numbers for widths)");
}

// `--key value`, or `--key=true|false` for a boolean (CLI11 reads flags that way).
std::vector<std::string> flag_args(const std::string& key, const ordered_json& value,
                                   const std::string& where) {
  if (value.is_boolean()) return {"--" + key + "=" + value_text(value, where)};
  return {"--" + key, value_text(value, where)};
}

// A key of the file must be a train flag that the sweep does not own.
void check_key_name(const std::string& key, const std::string& where) {
  const auto owned = sweep_owned_keys().find(key);
  if (owned != sweep_owned_keys().end())
    throw std::invalid_argument(where + ": --" + key + " is set by the sweep (" + owned->second +
                                ")");
  if (!is_known_flag(key)) {
    std::string hint = "; the keys are `mnistgan train --help`'s flag names without the dashes";
    std::string dashed = key;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    if (dashed != key && is_known_flag(dashed)) hint = "; did you mean \"" + dashed + "\"?";
    throw std::invalid_argument(where + ": unknown key \"" + key + "\": not a flag of `mnistgan train`" +
                                hint);
  }
}

// ... with a value train accepts on its own (checked with the other flags at their defaults).
void check_key(const std::string& key, const ordered_json& value, const std::string& where) {
  check_key_name(key, where);
  TrainFlagParser parser;
  try {
    parser.parse(flag_args(key, value, where));
    parser.config.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
}

const ordered_json& object_at(const ordered_json& parent, const char* key,
                              const std::string& source) {
  const ordered_json& value = parent.at(key);
  if (!value.is_object())
    throw std::invalid_argument(source + ": \"" + key + "\" must be an object of train flags, e.g. " +
                                "{\"steps\": 1000}");
  return value;
}

// Where each varied key of a run came from, for messages about values that only fail
// together with others ("axes.lr[1]", "runs[2].seed").
using KeyPlaces = std::map<std::string, std::string>;

// TrainConfig::validate()'s message starts with the flag ("--lr-g: ..."): name the place
// in the file that set it, else the run.
std::string place_of_message(const std::string& message, const KeyPlaces& places,
                             const std::string& run_place) {
  if (message.rfind("--", 0) == 0) {
    const std::string flag = message.substr(2, message.find(':') - 2);
    const auto found = places.find(flag);
    if (found != places.end()) return found->second;
  }
  return run_place;
}

}  // namespace

std::string sweep_run_name(const ordered_json& settings) {
  if (settings.empty()) return "base";
  std::string name;
  for (const auto& [key, value] : settings.items()) {
    std::string text;
    if (value.is_array()) {
      for (size_t i = 0; i < value.size(); ++i)
        text += (i ? "_" : "") + (value[i].is_string() ? value[i].get<std::string>()
                                                        : value[i].dump());
    } else {
      text = value.is_string() ? value.get<std::string>() : value.dump();
    }
    name += (name.empty() ? "" : ",") + key + "=" + text;
  }
  for (char& c : name) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '+' || c == '-' || c == '=' || c == ',';
    if (!safe) c = '_';
  }
  if (name[0] == '.') name[0] = '_';  // no hidden folders, no "." or ".."
  return name;
}

std::string sweep_group_key(const TrainConfig& c) {
  nlohmann::json key = {{"data", c.data_dir},
                        {"batch_size", c.batch_size},
                        {"latent_dim", c.latent_dim},
                        {"hidden_g", c.hidden_g},
                        {"hidden_d", c.hidden_d},
                        {"mbd_kernels", c.mbd_kernels},
                        {"mbd_dims", c.mbd_dims},
                        {"conditional", c.conditional},
                        {"d_steps", c.d_steps},
                        {"epochs", c.epochs},
                        {"steps", c.steps},
                        {"ema", c.ema_decay > 0.0f},
                        {"nan_policy", c.nan_policy}};
  return key.dump();
}

std::vector<SweepRun> parse_sweep_grid_text(const std::string& text, const std::string& source,
                                            const std::string& out, const std::string& device) {
  ordered_json grid;
  try {
    grid = ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::invalid_argument(source + ": not valid JSON: " + e.what());
  }
  if (!grid.is_object())
    throw std::invalid_argument(source +
                                ": must be a JSON object with \"train\", \"axes\" and/or \"runs\"");
  for (const auto& [key, value] : grid.items())
    if (key != "train" && key != "axes" && key != "runs")
      throw std::invalid_argument(source + ": unknown key \"" + key +
                                  "\"; a grid file has \"train\" (fixed flags), \"axes\" (varied, "
                                  "cartesian product) and \"runs\" (a list of runs)");

  // Fixed flags.
  std::vector<std::string> fixed_args;
  KeyPlaces fixed_places;
  if (grid.contains("train")) {
    for (const auto& [key, value] : object_at(grid, "train", source).items()) {
      const std::string where = source + ": train." + key;
      check_key(key, value, where);
      const std::vector<std::string> args = flag_args(key, value, where);
      fixed_args.insert(fixed_args.end(), args.begin(), args.end());
      fixed_places[key] = where;
    }
  }

  // The varied settings of every run, with where each value sits in the file.
  struct Variant {
    ordered_json settings = ordered_json::object();
    KeyPlaces places;
  };
  std::vector<Variant> variants;
  if (grid.contains("axes")) {
    const ordered_json& axes = object_at(grid, "axes", source);
    variants.push_back({});
    for (const auto& [key, values] : axes.items()) {
      const std::string where = source + ": axes." + key;
      check_key_name(key, where);
      if (!values.is_array() || values.empty())
        throw std::invalid_argument(where + ": an axis is a non-empty list of values, e.g. [1, 2, 3]");
      if (fixed_places.count(key))
        throw std::invalid_argument(where + ": also fixed in \"train\"; give it in one place");
      std::vector<Variant> product;
      for (const Variant& base : variants)
        for (size_t i = 0; i < values.size(); ++i) {
          const std::string place = where + "[" + std::to_string(i) + "]";
          check_key(key, values[i], place);
          Variant v = base;
          v.settings[key] = values[i];
          v.places[key] = place;
          product.push_back(std::move(v));
        }
      variants = std::move(product);
    }
  }
  if (grid.contains("runs")) {
    const ordered_json& runs = grid.at("runs");
    if (!runs.is_array())
      throw std::invalid_argument(source + ": \"runs\" must be a list of objects of train flags");
    for (size_t j = 0; j < runs.size(); ++j) {
      const std::string where = source + ": runs[" + std::to_string(j) + "]";
      if (!runs[j].is_object())
        throw std::invalid_argument(where + ": must be an object of train flags, e.g. {\"seed\": 7}");
      Variant v;
      for (const auto& [key, value] : runs[j].items()) {
        const std::string place = where + "." + key;
        check_key(key, value, place);
        if (fixed_places.count(key))
          throw std::invalid_argument(place + ": also fixed in \"train\"; give it in one place");
        v.settings[key] = value;
        v.places[key] = place;
      }
      variants.push_back(std::move(v));
    }
  }
  if (variants.empty()) variants.push_back({});

  std::vector<SweepRun> runs;
  std::map<std::string, std::string> first_place_of_name;
  for (size_t i = 0; i < variants.size(); ++i) {
    const Variant& v = variants[i];
    SweepRun run;
    run.index = static_cast<int>(i);
    run.settings = v.settings;
    run.name = sweep_run_name(v.settings);
    const std::string run_place = source + ": run " + run.name;
    KeyPlaces places = fixed_places;
    places.insert(v.places.begin(), v.places.end());
    if (!first_place_of_name.emplace(run.name, run_place).second)
      throw std::invalid_argument(run_place + ": two runs of the grid have these same settings "
                                  "(or names that differ only in unsafe characters)");
    run.args = fixed_args;
    for (const auto& [key, value] : v.settings.items()) {
      const std::vector<std::string> args = flag_args(key, value, places[key]);
      run.args.insert(run.args.end(), args.begin(), args.end());
    }
    TrainFlagParser parser;
    try {
      parser.parse(run.args);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(run_place + ": " + e.what());
    }
    run.config = parser.config;
    run.config.out_dir = (fs::path(out) / "runs" / run.name).string();
    run.config.device = device;
    try {
      run.config.validate();
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(place_of_message(e.what(), places, run_place) + ": " + e.what());
    }
    run.group = sweep_group_key(run.config);
    runs.push_back(std::move(run));
  }
  return runs;
}

std::vector<SweepRun> parse_sweep_grid(const std::string& path, const std::string& out,
                                       const std::string& device) {
  return parse_sweep_grid_text(read_file(path, kMaxGridBytes), path, out, device);
}

std::vector<SweepRun> sweep_share(const std::vector<SweepRun>& runs, int index, int count) {
  if (count < 1 || index < 0 || index >= count)
    throw std::invalid_argument("--shard: " + std::to_string(index) + "/" + std::to_string(count) +
                                " is not a share: give I/N with 0 <= I < N");
  std::vector<const SweepRun*> ordered;
  for (const SweepRun& run : runs) ordered.push_back(&run);
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const SweepRun* a, const SweepRun* b) { return a->group < b->group; });
  const size_t n = ordered.size();
  const size_t begin = n * index / count, end = n * (index + 1) / count;
  std::vector<SweepRun> share;
  for (size_t i = begin; i < end; ++i) share.push_back(*ordered[i]);
  return share;
}

}  // namespace mnistgan
