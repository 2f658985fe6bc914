// progress.cpp: see progress.h.
#include "train/progress.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "io/atomic_file.h"
#include "eval/eval.h"  // eval_figures, EvalMetrics
#include "plot/plot.h"  // plot_lines, stack_vertically

namespace mnistgan {

const char* MetricsLog::header() {
  return "step,epoch,d_loss,g_loss,d_x,d_g_z,steps_per_s,images_per_s,elapsed_s,skipped\n";
}

const std::vector<std::string>& MetricsLog::eval_columns() {
  // eval_figures' names in its order (a default EvalMetrics only lends them; its values
  // are unused), so the header cannot drift from the values the trainer writes.
  static const std::vector<std::string> columns = [] {
    std::vector<std::string> names;
    for (const auto& figure : eval_figures(EvalMetrics{})) names.push_back("eval_" + figure.first);
    return names;
  }();
  return columns;
}

MetricsLog::MetricsLog(std::string path, int64_t resume_step, bool with_eval)
    : path_(std::move(path)), with_eval_(with_eval) {
  text_ = header();
  if (with_eval_) {
    text_.pop_back();  // the newline
    for (const std::string& column : eval_columns()) text_ += "," + column;
    text_ += "\n";
  }
  if (resume_step <= 0) return;
  std::ifstream in(path_);
  std::string line;
  if (!std::getline(in, line)) return;  // no earlier metrics: start a fresh file
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    char* end = nullptr;
    const long long step = std::strtoll(line.c_str(), &end, 10);
    if (end == line.c_str() || step > resume_step) break;
    text_ += line + "\n";
    MetricsRow row;
    if (parse_metrics_row(line, with_eval_, row)) rows_.push_back(std::move(row));
  }
}

bool parse_metrics_row(const std::string& line, bool with_eval, MetricsRow& row) {
  std::vector<std::string> cells;
  std::stringstream in(line);
  for (std::string cell; std::getline(in, cell, ',');) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.push_back("");  // a last empty eval cell
  const size_t base = 10, want = base + (with_eval ? MetricsLog::eval_columns().size() : 0);
  if (cells.size() < want) return false;
  std::vector<double> v(cells.size(), NAN);
  for (size_t i = 0; i < want; ++i) {
    if (cells[i].empty()) {
      if (i < base) return false;  // only eval cells may be empty
      continue;
    }
    char* end = nullptr;
    v[i] = std::strtod(cells[i].c_str(), &end);
    if (end == cells[i].c_str() || *end != '\0') return false;
  }
  row.step = static_cast<int64_t>(v[0]);
  row.epoch = v[1], row.d_loss = v[2], row.g_loss = v[3], row.d_x = v[4], row.d_g_z = v[5];
  row.steps_per_s = v[6], row.images_per_s = v[7], row.elapsed_s = v[8];
  row.skipped = static_cast<int64_t>(v[9]);
  row.eval.clear();
  bool any_eval = false;
  for (size_t i = base; i < want; ++i) any_eval = any_eval || std::isfinite(v[i]);
  if (any_eval) row.eval.assign(v.begin() + base, v.begin() + want);
  return true;
}

RgbImage plot_training_curves(const std::vector<MetricsRow>& rows, double frechet_floor) {
  if (rows.empty()) throw std::invalid_argument("plot_training_curves: no metrics rows");
  static const uint8_t kBlue[3] = {31, 119, 180}, kOrange[3] = {255, 127, 14},
                       kGreen[3] = {44, 160, 44};
  LineSeries d_loss{"D loss", {}, {}, {kBlue[0], kBlue[1], kBlue[2]}};
  LineSeries g_loss{"G loss", {}, {}, {kOrange[0], kOrange[1], kOrange[2]}};
  LineSeries d_x{"D(x)", {}, {}, {kBlue[0], kBlue[1], kBlue[2]}};
  LineSeries d_g_z{"D(G(z))", {}, {}, {kOrange[0], kOrange[1], kOrange[2]}};
  LineSeries frechet{"Fréchet distance", {}, {}, {kGreen[0], kGreen[1], kGreen[2]}, true};
  const auto& columns = MetricsLog::eval_columns();
  const size_t fd_index = static_cast<size_t>(
      std::find(columns.begin(), columns.end(), "eval_frechet_distance") - columns.begin());
  for (const MetricsRow& r : rows) {
    const double x = static_cast<double>(r.step);
    d_loss.x.push_back(x), d_loss.y.push_back(r.d_loss);
    g_loss.x.push_back(x), g_loss.y.push_back(r.g_loss);
    d_x.x.push_back(x), d_x.y.push_back(r.d_x);
    d_g_z.x.push_back(x), d_g_z.y.push_back(r.d_g_z);
    if (fd_index < r.eval.size() && std::isfinite(r.eval[fd_index]))
      frechet.x.push_back(x), frechet.y.push_back(r.eval[fd_index]);
  }
  std::vector<RgbImage> panels;
  panels.push_back(plot_lines({d_loss, g_loss},
                              {"Losses (dashed: equilibrium 2 ln 2, ln 2)", "step", "BCE"},
                              {2.0 * std::log(2.0), std::log(2.0)}));
  panels.push_back(
      plot_lines({d_x, d_g_z}, {"D outputs (dashed: ideal 0.5)", "step", "mean D"}, {0.5}));
  if (!frechet.x.empty()) {
    std::vector<double> reference;
    if (std::isfinite(frechet_floor)) reference.push_back(frechet_floor);
    panels.push_back(
        plot_lines({frechet},
                   {std::isfinite(frechet_floor) ? "Sample quality (dashed: real-data floor)"
                                                 : "Sample quality",
                    "step", "Fréchet distance"},
                   reference));
  }
  return stack_vertically(panels);
}

void MetricsLog::append(const MetricsRow& r) {
  char line[512];
  std::snprintf(line, sizeof(line),
                "%" PRId64 ",%.4f,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f,%.3f,%" PRId64 "\n", r.step,
                r.epoch, r.d_loss, r.g_loss, r.d_x, r.d_g_z, r.steps_per_s, r.images_per_s,
                r.elapsed_s, r.skipped);
  if (!with_eval_) {
    text_ += line;
  } else {
    // The row without its newline, then the eval cells (empty without an evaluation).
    text_.append(line, std::strlen(line) - 1);
    for (size_t i = 0; i < eval_columns().size(); ++i) {
      char cell[32] = "";
      if (i < r.eval.size()) std::snprintf(cell, sizeof(cell), "%.6g", r.eval[i]);
      text_ += ",";
      text_ += cell;
    }
    text_ += "\n";
  }
  write_file_atomic(path_, text_);
  rows_.push_back(r);
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  char buf[64];
  if (seconds < 60) {
    std::snprintf(buf, sizeof(buf), "%.1fs", seconds);
  } else if (seconds < 3600) {
    const int s = static_cast<int>(seconds);
    std::snprintf(buf, sizeof(buf), "%dm%02ds", s / 60, s % 60);
  } else {
    const int m = static_cast<int>(seconds / 60);
    std::snprintf(buf, sizeof(buf), "%dh%02dm", m / 60, m % 60);
  }
  return buf;
}

void StatusLine::show(const char* line) {
  if (live_) {
    std::fprintf(stderr, "\r\033[K%s", line);
    dirty_ = true;
  } else {
    std::fprintf(stderr, "%s\n", line);
  }
  std::fflush(stderr);
}

void StatusLine::message(const std::string& text) {
  if (live_ && dirty_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", text.c_str());
  dirty_ = false;
  std::fflush(stderr);
}

void StatusLine::finish() {
  if (live_ && dirty_) std::fprintf(stderr, "\n");
  dirty_ = false;
}

ProgressLine::ProgressLine(int64_t total_steps, bool live) : total_(total_steps), status_(live) {}

void ProgressLine::update(const MetricsRow& r) {
  const double eta = r.steps_per_s > 0 ? (total_ - r.step) / r.steps_per_s : NAN;
  char line[256];
  std::snprintf(line, sizeof(line),
                "step %" PRId64 "/%" PRId64
                " (%3.0f%%) epoch %.2f | d_loss %.3f g_loss %.3f "
                "D(x) %.3f D(G(z)) %.3f | %.1f steps/s %.0f img/s | ETA %s",
                r.step, total_, 100.0 * r.step / std::max<int64_t>(total_, 1), r.epoch, r.d_loss,
                r.g_loss, r.d_x, r.d_g_z, r.steps_per_s, r.images_per_s,
                format_duration(eta).c_str());
  status_.show(line);
}

}  // namespace mnistgan
