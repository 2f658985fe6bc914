// progress.cpp: see progress.h.
#include "progress.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "atomic_file.h"
#include "eval.h"  // eval_figures, EvalMetrics

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
  }
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

ProgressLine::ProgressLine(int64_t total_steps, bool live) : total_(total_steps), live_(live) {}

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
  if (live_) {
    std::fprintf(stderr, "\r\033[K%s", line);
    dirty_ = true;
  } else {
    std::fprintf(stderr, "%s\n", line);
  }
  std::fflush(stderr);
}

void ProgressLine::message(const std::string& text) {
  if (live_ && dirty_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", text.c_str());
  dirty_ = false;
  std::fflush(stderr);
}

void ProgressLine::finish() {
  if (live_ && dirty_) std::fprintf(stderr, "\n");
  dirty_ = false;
}

}  // namespace mnistgan
