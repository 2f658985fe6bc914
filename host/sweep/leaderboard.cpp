// leaderboard.cpp: see leaderboard.h.
#include "sweep/leaderboard.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "eval/eval.h"       // eval_figures: the figure names, in their order
#include "io/atomic_file.h"  // write_file_atomic, read_file
#include "plot/font.h"       // draw_text, text_width

namespace mnistgan {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

constexpr size_t kMaxSmallFileBytes = 16 << 20;  // status and eval.json files
constexpr size_t kMaxGridPngBytes = 64 << 20;

// Column names of the eval figures, in eval.cpp's order, plus the conditional read-back.
const std::vector<std::string>& figure_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& figure : eval_figures(EvalMetrics{})) n.push_back(figure.first);
    n.push_back("digit_accuracy");  // conditional runs: the asked digit read back
    return n;
  }();
  return names;
}

// A figure from an eval.json "model" or "floor" object; NaN when absent.
double figure(const json& metrics, const std::string& name) {
  if (!metrics.is_object()) return NAN;
  if (name == "digit_accuracy") {
    if (!metrics.contains("conditional")) return NAN;
    const json& c = metrics.at("conditional");
    return c.contains("accuracy") && c.at("accuracy").is_number() ? c.at("accuracy").get<double>()
                                                                   : NAN;
  }
  return metrics.contains(name) && metrics.at(name).is_number() ? metrics.at(name).get<double>()
                                                                : NAN;
}

double frechet_of(const RunRecord& r) {
  return r.eval.is_object() && r.eval.contains("model")
             ? figure(r.eval.at("model"), "frechet_distance")
             : NAN;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string number_text(double value) {
  if (!std::isfinite(value)) return "";
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", value);
  return text;
}

std::string setting_text(const ordered_json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

// The settings keys of all records, in order of first appearance.
std::vector<std::string> setting_keys(const std::vector<RunRecord>& records) {
  std::vector<std::string> keys;
  for (const RunRecord& r : records)
    for (const auto& [key, value] : r.settings.items())
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  return keys;
}

// The newest samples/step_N.png of a run folder ("" when none).
fs::path newest_grid(const fs::path& folder) {
  fs::path newest;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder / "samples", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step_", 0) == 0 && entry.path().extension() == ".png" &&
        (newest.empty() || name > newest.filename().string()))
      newest = entry.path();
  }
  return newest;
}

}  // namespace

std::vector<uint8_t> encode_run_record(const RunRecord& r) {
  const json j = {{"name", r.name},
                  {"settings", json::parse(r.settings.dump())},
                  {"settings_text", r.settings.dump()},
                  {"status", r.status},
                  {"step", r.step},
                  {"total_steps", r.total_steps},
                  {"message", r.message},
                  {"folder", r.folder},
                  {"eval", r.eval},
                  {"grid_png", json::binary(r.grid_png)}};
  return json::to_cbor(j);
}

RunRecord decode_run_record(const std::vector<uint8_t>& bytes) {
  try {
    const json j = json::from_cbor(bytes);
    RunRecord r;
    r.name = j.at("name").get<std::string>();
    // Kept as text so the settings keep their order (CBOR maps here are unordered).
    r.settings = ordered_json::parse(j.at("settings_text").get<std::string>());
    r.status = j.at("status").get<std::string>();
    r.step = j.at("step").get<int64_t>();
    r.total_steps = j.at("total_steps").get<int64_t>();
    r.message = j.at("message").get<std::string>();
    r.folder = j.at("folder").get<std::string>();
    r.eval = j.at("eval");
    const auto& png = j.at("grid_png").get_binary();
    r.grid_png.assign(png.begin(), png.end());
    return r;
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("malformed run record: ") + e.what());
  }
}

fs::path run_status_path(const fs::path& sweep_dir, const std::string& name) {
  return sweep_dir / "status" / (name + ".json");
}

void write_run_status(const fs::path& sweep_dir, const SweepRun& run, const std::string& status,
                      int64_t step, int64_t total_steps, const std::string& message) {
  ordered_json j = {{"name", run.name},     {"settings", run.settings},
                    {"status", status},     {"step", step},
                    {"total_steps", total_steps}};
  if (!message.empty()) j["message"] = message;
  write_file_atomic(run_status_path(sweep_dir, run.name).string(), j.dump(2) + "\n");
}

RunRecord read_run_record(const fs::path& sweep_dir, const SweepRun& run) {
  RunRecord r;
  r.name = run.name;
  r.settings = run.settings;
  r.folder = run.config.out_dir;
  const fs::path status = run_status_path(sweep_dir, run.name);
  std::error_code ec;
  if (fs::exists(status, ec)) {
    const json j = json::parse(read_file(status.string(), kMaxSmallFileBytes));
    r.status = j.at("status").get<std::string>();
    r.step = j.at("step").get<int64_t>();
    r.total_steps = j.at("total_steps").get<int64_t>();
    r.message = j.value("message", "");
  }
  const fs::path eval = fs::path(run.config.out_dir) / "eval.json";
  if (fs::exists(eval, ec)) r.eval = json::parse(read_file(eval.string(), kMaxSmallFileBytes));
  const fs::path grid = newest_grid(run.config.out_dir);
  if (!grid.empty()) {
    const std::string bytes = read_file(grid.string(), kMaxGridPngBytes);
    r.grid_png.assign(bytes.begin(), bytes.end());
  }
  return r;
}

std::vector<RankedRecord> rank_records(const std::vector<RunRecord>& records) {
  // 0: evaluated and not failed (ranked by Frechet distance), 1: failed, 2: no evaluation.
  auto category = [](const RunRecord& r) {
    if (r.status == "failed") return 1;
    return std::isfinite(frechet_of(r)) ? 0 : 2;
  };
  std::vector<const RunRecord*> order;
  for (const RunRecord& r : records) order.push_back(&r);
  std::stable_sort(order.begin(), order.end(), [&](const RunRecord* a, const RunRecord* b) {
    const int ca = category(*a), cb = category(*b);
    if (ca != cb) return ca < cb;
    return ca == 0 && frechet_of(*a) < frechet_of(*b);
  });
  std::vector<RankedRecord> ranked;
  int rank = 0;
  for (const RunRecord* r : order) ranked.push_back({category(*r) == 0 ? ++rank : 0, r});
  return ranked;
}

RgbImage leaderboard_picture(const std::vector<RunRecord>& records, int best) {
  constexpr int kGap = 12, kMargin = 10, kLine = 13, kTitleScale = 2, kMinTileWidth = 180;
  const uint8_t kInk[3] = {20, 20, 20}, kFailed[3] = {190, 30, 30};
  struct Tile {
    GrayImage grid;
    std::vector<std::string> lines;
    bool failed;
  };
  std::vector<Tile> tiles;
  for (const RankedRecord& ranked : rank_records(records)) {
    if (static_cast<int>(tiles.size()) >= best) break;
    const RunRecord& r = *ranked.record;
    if (r.grid_png.empty()) continue;
    Tile tile;
    tile.grid = decode_png_gray(std::string(r.grid_png.begin(), r.grid_png.end()), r.name);
    tile.failed = r.status == "failed";
    const int width = std::max(tile.grid.width, kMinTileWidth);
    // The name, broken after its commas to fit the tile.
    std::string line = ranked.rank > 0 ? "#" + std::to_string(ranked.rank) + " " : "";
    std::string name = r.name;
    while (!name.empty()) {
      const size_t comma = name.find(',');
      const std::string part = comma == std::string::npos ? name : name.substr(0, comma + 1);
      name = comma == std::string::npos ? "" : name.substr(comma + 1);
      if (!line.empty() && text_width(line + part, 1) > width) {
        tile.lines.push_back(line);
        line.clear();
      }
      line += part;
    }
    tile.lines.push_back(line);
    const double frechet = frechet_of(r);
    const double floor = r.eval.is_object() && r.eval.contains("floor")
                             ? figure(r.eval.at("floor"), "frechet_distance")
                             : NAN;
    char text[96];
    if (std::isfinite(frechet)) {
      std::snprintf(text, sizeof(text), "Frechet %.2f (floor %.2f)", frechet, floor);
      tile.lines.push_back(text);
    }
    std::snprintf(text, sizeof(text), "%s, step %lld/%lld", r.status.c_str(),
                  static_cast<long long>(r.step), static_cast<long long>(r.total_steps));
    tile.lines.push_back(text);
    tiles.push_back(std::move(tile));
  }
  if (tiles.empty()) throw std::invalid_argument("leaderboard_picture: no run has a grid yet");

  int width = kMargin, tallest = 0;
  size_t most_lines = 0;
  for (const Tile& t : tiles) {
    width += std::max(t.grid.width, kMinTileWidth) + kGap;
    tallest = std::max(tallest, t.grid.height);
    most_lines = std::max(most_lines, t.lines.size());
  }
  width += kMargin - kGap;
  const int title_height = 9 * kTitleScale + kMargin;  // capitals and descenders
  const int height = kMargin + title_height + tallest + 6 + static_cast<int>(most_lines) * kLine +
                     kMargin;
  char title[96];
  std::snprintf(title, sizeof(title), "Sweep of %zu runs: the best %zu by Frechet distance",
                records.size(), tiles.size());
  RgbImage image;
  image.width = std::max(width, text_width(title, kTitleScale) + 2 * kMargin);
  image.height = height;
  image.pixels.assign(static_cast<size_t>(image.width) * image.height * 3, 255);
  draw_text(image, kMargin, kMargin, title, kInk, kTitleScale);
  int x = kMargin;
  const int top = kMargin + title_height;
  for (const Tile& t : tiles) {
    for (int y = 0; y < t.grid.height; ++y)
      for (int gx = 0; gx < t.grid.width; ++gx) {
        const uint8_t v = t.grid.pixels[static_cast<size_t>(y) * t.grid.width + gx];
        uint8_t* px = &image.pixels[(static_cast<size_t>(top + y) * image.width + x + gx) * 3];
        px[0] = px[1] = px[2] = v;
      }
    int y = top + tallest + 6;
    for (const std::string& line : t.lines) {
      draw_text(image, x, y, line, t.failed ? kFailed : kInk, 1);
      y += kLine;
    }
    x += std::max(t.grid.width, kMinTileWidth) + kGap;
  }
  return image;
}

void write_leaderboard(const fs::path& dir, const std::vector<RunRecord>& records, int best) {
  const std::vector<RankedRecord> ranked = rank_records(records);
  const std::vector<std::string> keys = setting_keys(records);
  const std::vector<std::string>& figures = figure_names();

  std::string csv = "rank,run,status,step,total_steps,eval_step";
  for (const std::string& f : figures) csv += "," + f + "," + f + "_floor";
  for (const std::string& k : keys) csv += "," + csv_field(k);
  csv += ",folder,message\n";
  json runs = json::array();
  for (const RankedRecord& entry : ranked) {
    const RunRecord& r = *entry.record;
    const bool has_eval = r.eval.is_object() && r.eval.contains("model");
    const json model = has_eval ? r.eval.at("model") : json();
    const json floor = has_eval && r.eval.contains("floor") ? r.eval.at("floor") : json();
    const int64_t eval_step = has_eval ? r.eval.value("step", int64_t{-1}) : -1;
    csv += (entry.rank > 0 ? std::to_string(entry.rank) : "") + "," + csv_field(r.name) + "," +
           r.status + "," + std::to_string(r.step) + "," + std::to_string(r.total_steps) + "," +
           (eval_step >= 0 ? std::to_string(eval_step) : "");
    json model_figures = json::object(), floor_figures = json::object();
    for (const std::string& f : figures) {
      const double m = figure(model, f), fl = figure(floor, f);
      csv += "," + number_text(m) + "," + number_text(fl);
      if (std::isfinite(m)) model_figures[f] = m;
      if (std::isfinite(fl)) floor_figures[f] = fl;
    }
    for (const std::string& k : keys)
      csv += "," + (r.settings.contains(k) ? csv_field(setting_text(r.settings.at(k))) : "");
    csv += "," + csv_field(r.folder) + "," + csv_field(r.message) + "\n";
    json row = {{"rank", entry.rank > 0 ? json(entry.rank) : json()},
                {"run", r.name},
                {"status", r.status},
                {"step", r.step},
                {"total_steps", r.total_steps},
                {"eval_step", eval_step >= 0 ? json(eval_step) : json()},
                {"settings", json::parse(r.settings.dump())},
                {"model", model_figures},
                {"floor", floor_figures},
                {"folder", r.folder}};
    if (!r.message.empty()) row["message"] = r.message;
    runs.push_back(row);
  }
  const json board = {{"format", "mnistgan sweep leaderboard"},
                      {"ranked_by", "frechet_distance (lower is better)"},
                      {"figures", figures},
                      {"runs", runs}};
  write_file_atomic((dir / "leaderboard.csv").string(), csv);
  write_file_atomic((dir / "leaderboard.json").string(), board.dump(2) + "\n");
  bool any_grid = false;
  for (const RunRecord& r : records) any_grid = any_grid || !r.grid_png.empty();
  if (any_grid)
    write_png_rgb((dir / "leaderboard.png").string(), leaderboard_picture(records, best),
                  {{"Software", "mnistgan"}});
}

}  // namespace mnistgan
