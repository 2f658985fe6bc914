// progress.h: what a run shows while it trains: metrics.csv, curves.png and the progress line.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "io/image_io.h"  // RgbImage

namespace mnistgan {

// One metrics.csv row: averages over the steps since the previous row.
struct MetricsRow {
  int64_t step = 0;        // steps completed
  double epoch = 0;        // epochs completed, fractional
  double d_loss = 0;       // BCE(D(x), real_label) + BCE(D(G(z)), 0)
  double g_loss = 0;       // BCE(D(G(z)), 1) after the D update (non-saturating G loss)
  double d_x = 0;          // mean D(x) on real batches
  double d_g_z = 0;        // mean D(G(z)) on fake batches, before the D update
  double steps_per_s = 0;  // since the previous row
  double images_per_s = 0;
  double elapsed_s = 0;  // wall time of this process's training loop
  int64_t skipped = 0;   // updates skipped by --nan-policy skip-step since the previous row
  // The eval_* columns (--eval-every), in MetricsLog::eval_columns() order; empty (empty
  // cells) on rows without an evaluation.
  std::vector<double> eval;
};

// metrics.csv, rewritten atomically at every row so it is always a complete CSV. On resume
// it keeps the rows up to the resumed step, so steps done twice are not listed twice.
class MetricsLog {
 public:
  // with_eval: rows end with the eval_columns() (train --eval-every).
  MetricsLog(std::string path, int64_t resume_step, bool with_eval = false);
  void append(const MetricsRow& row);
  // Every row of the file, the resumed ones included (parsed back from it).
  const std::vector<MetricsRow>& rows() const { return rows_; }
  static const char* header();
  // Names of the eval columns that end every row: eval.cpp's eval_figures names, in its
  // order, each prefixed "eval_".
  static const std::vector<std::string>& eval_columns();

 private:
  std::string path_;
  std::string text_;
  bool with_eval_ = false;
  std::vector<MetricsRow> rows_;
};

// Parses one metrics.csv data line (MetricsLog's format; empty eval cells become NaN).
// Returns false when the line has too few cells or a cell is not a number.
bool parse_metrics_row(const std::string& line, bool with_eval, MetricsRow& row);

// curves.png: the run at a glance, one panel per row of charts against step:
//   losses       d_loss and g_loss, with the equilibrium values 2 ln 2 and ln 2 dashed
//   D's outputs  D(x) and D(G(z)), with the ideal 0.5 dashed
//   quality      the Frechet distance of each evaluation (--eval-every), with the real-data
//                floor dashed when known (frechet_floor; NaN when not); only when some row
//                has an evaluation
// 800 pixels wide. Throws std::invalid_argument when rows is empty.
RgbImage plot_training_curves(const std::vector<MetricsRow>& rows, double frechet_floor);

// A status line on stderr: rewritten in place on a terminal (live), one plain line per
// show() otherwise (so logs and CI output stay readable). `train`'s and `sweep`'s progress.
class StatusLine {
 public:
  explicit StatusLine(bool live) : live_(live) {}
  bool live() const { return live_; }
  void show(const char* line);
  void message(const std::string& text);  // a line of its own, above the live line
  void finish();                          // ends a live line with a newline

 private:
  bool live_;
  bool dirty_ = false;  // a live line is on screen without its newline
};

// Training progress: step, epoch, losses, D's outputs, speed and ETA on a StatusLine.
class ProgressLine {
 public:
  ProgressLine(int64_t total_steps, bool live);
  void update(const MetricsRow& row);
  void message(const std::string& text) { status_.message(text); }
  void finish() { status_.finish(); }

 private:
  int64_t total_;
  StatusLine status_;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12.3s"

}  // namespace mnistgan
