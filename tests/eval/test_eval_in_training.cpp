// test_eval_in_training.cpp: evaluation during and at the end of `mnistgan train`
// (--eval-every's metrics.csv columns, eval.json, the final table, curves.png's quality
// panel, --no-final-eval), and `mnistgan eval` on the run's checkpoint (its table, its JSON,
// the EMA generator or --raw-generator), with the classifier of eval_test_util.h.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "eval/classifier.h"
#include "eval/eval.h"
#include "eval_test_util.h"  // fresh_dir, trained
#include "io/atomic_file.h"  // read_file, IoError
#include "io/idx.h"
#include "io/image_io.h"     // read_png_gray
#include "run_test_util.h"   // run_command
#include "train/progress.h"  // MetricsLog::eval_columns
#include "train/trainer.h"

namespace mnistgan {
namespace {

namespace fs = std::filesystem;
using evaltest::fresh_dir;
using evaltest::trained;
using evaltest::TrainedClassifier;

// ---- train --eval-every and `mnistgan eval` ------------------------------------------------

// A data folder with train and t10k: the real MNIST folder, or the synthetic sets written out.
fs::path data_dir_with_test_split(TrainedClassifier& t) {
  if (t.real_mnist) return fs::path(testpaths::source_dir()) / "data" / "mnist";
  static const fs::path dir = [&] {
    const fs::path d = fresh_dir("synthetic_data");
    write_idx_images((d / "train-images-idx3-ubyte").string(), t.train.images);
    write_idx_labels((d / "train-labels-idx1-ubyte").string(), t.train.labels);
    write_idx_images((d / "t10k-images-idx3-ubyte").string(), t.test.images);
    write_idx_labels((d / "t10k-labels-idx1-ubyte").string(), t.test.labels);
    return d;
  }();
  return dir;
}

std::vector<std::string> csv_lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(line);
  return lines;
}

std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> cells(1);
  for (char c : line) {
    if (c == ',')
      cells.emplace_back();
    else
      cells.back().push_back(c);
  }
  return cells;
}

// A 20-step run of a small GAN into dir/run, evaluated with 200 samples by classifier_path.
TrainConfig small_eval_run(TrainedClassifier& t, const fs::path& dir,
                           const std::string& classifier_path) {
  TrainConfig config;
  config.data_dir = data_dir_with_test_split(t).string();
  config.out_dir = (dir / "run").string();
  config.device = "cpu";
  config.batch_size = 32;
  config.hidden_g = {64, 128};
  config.hidden_d = {128, 64};
  config.mbd_kernels = 8;
  config.steps = 20;
  config.log_every = 10;
  config.eval_samples = 200;
  config.classifier = classifier_path;
  return config;
}

TEST(EvalInTraining, EvalColumnsEveryNStepsAndAtTheEndThenTheCliEvaluatesTheCheckpoint) {
  TrainedClassifier& t = trained();
  const fs::path dir = fresh_dir("train_eval");
  const std::string classifier_path = (dir / "classifier.bin").string();
  ClassifierInfo info;
  info.test_accuracy = t.accuracy;
  info = save_classifier(classifier_path, *t.classifier, info);

  TrainConfig config = small_eval_run(t, dir, classifier_path);
  config.eval_every = 15;

  // Without the classifier the run stops before its first step, naming the command.
  TrainConfig missing = config;
  missing.classifier = (dir / "absent.bin").string();
  missing.out_dir = (dir / "run_missing").string();
  try {
    run_training(missing);
    ADD_FAILURE() << "training started without its classifier";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("mnistgan classifier"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "run_missing" / "metrics.csv"));

  ::testing::internal::CaptureStderr();
  const int code = run_training(config);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(code, 0) << log;
  EXPECT_NE(log.find("eval at step 15"), std::string::npos) << log;
  const std::vector<std::string> lines = csv_lines(dir / "run" / "metrics.csv");
  ASSERT_EQ(lines.size(), 4u) << "header and steps 10, 15, 20";
  const std::vector<std::string> header = split_commas(lines[0]);
  const std::vector<std::string>& columns = MetricsLog::eval_columns();
  ASSERT_GT(header.size(), columns.size());
  // The eval columns come last, in eval_figures' order.
  const std::vector<std::pair<std::string, double>> figures = eval_figures(EvalMetrics{});
  ASSERT_EQ(figures.size(), columns.size());
  for (size_t i = 0; i < columns.size(); ++i) {
    EXPECT_EQ(header[header.size() - columns.size() + i], columns[i]);
    EXPECT_EQ(columns[i], "eval_" + figures[i].first);
  }
  // The columns are derived from eval_figures, so the file format is pinned here: a renamed
  // or reordered figure changes metrics.csv for every reader of it.
  EXPECT_EQ(columns,
            (std::vector<std::string>{
                "eval_frechet_distance", "eval_classifier_score", "eval_classifier_score_std",
                "eval_classes_hit", "eval_classes_half_share", "eval_kl_uniform_nats",
                "eval_precision_k3", "eval_recall_k3", "eval_density_k5", "eval_coverage_k5"}));
  for (size_t row = 1; row < lines.size(); ++row) {
    const std::vector<std::string> cells = split_commas(lines[row]);
    ASSERT_EQ(cells.size(), header.size()) << lines[row];
    const bool evaluated = cells[0] == "15" || cells[0] == "20";
    for (size_t i = header.size() - columns.size(); i < header.size(); ++i)
      EXPECT_EQ(cells[i].empty(), !evaluated) << "step " << cells[0] << " column " << header[i];
  }
  const nlohmann::json latest =
      nlohmann::json::parse(read_file((dir / "run" / "eval.json").string(), 1 << 20));
  EXPECT_EQ(latest.at("step").get<int64_t>(), 20);
  EXPECT_EQ(latest.at("classifier").at("sha256").get<std::string>(), info.weights_sha256);
  EXPECT_TRUE(latest.at("floor").contains("frechet_distance"));
  // Every figure is in the JSON, the counts as integers.
  for (const auto& figure : figures) EXPECT_TRUE(latest.at("model").contains(figure.first));
  EXPECT_TRUE(latest.at("model").at("classes_hit").is_number_integer());
  EXPECT_TRUE(latest.at("model").at("classes_half_share").is_number_integer());

  // `mnistgan eval` on the run's checkpoint: a table on stdout and the JSON file.
  const std::string json = (dir / "eval.json").string();
  const runtest::BinaryResult eval = runtest::run_command(
      "eval --device cpu --checkpoint " + (dir / "run" / "latest.ckpt").string() +
      " --classifier " + classifier_path + " --data " + config.data_dir + " --samples 200 --json " +
      json);
  const std::string& output = eval.output;
  EXPECT_EQ(eval.code, 0) << output;
  EXPECT_NE(output.find("frechet_distance"), std::string::npos) << output;
  const nlohmann::json j = nlohmann::json::parse(read_file(json, 1 << 20));
  EXPECT_EQ(j.at("samples").get<int64_t>(), 200);
  EXPECT_EQ(j.at("classifier").at("sha256").get<std::string>(), info.weights_sha256);
  // Same generator, seed and sample count as the run's final evaluation: the same figures,
  // up to float rounding (the run generates 32 rows per GEMM, eval 1000, and OpenBLAS sums
  // in a shape-dependent order).
  const double run_fd = latest.at("model").at("frechet_distance").get<double>();
  EXPECT_NEAR(j.at("model").at("frechet_distance").get<double>(), run_fd, 1e-5 * run_fd);
  EXPECT_EQ(j.at("model").at("class_counts"), latest.at("model").at("class_counts"));
  // The end of the run: the last evaluation as the model-vs-floor table; curves.png with the
  // third panel, the Frechet distance (three 300-pixel panels).
  EXPECT_NE(log.find("the final EMA generator at step 20 against the real-data floor"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("classifier_score"), std::string::npos) << log;
  const GrayImage curves = read_png_gray((dir / "run" / "curves.png").string());
  EXPECT_EQ(curves.width, 800);
  EXPECT_EQ(curves.height, 900);
  fs::remove_all(dir);
}

// Without --eval-every, a run whose --classifier exists still ends with the table and
// eval.json, of the EMA generator when there is one; `eval` takes the EMA generator from the
// checkpoint unless --raw-generator. --no-final-eval skips it.
TEST(EvalInTraining, FinalEvaluationOfTheEmaGeneratorAndTheRawOneOnRequest) {
  TrainedClassifier& t = trained();
  const fs::path dir = fresh_dir("train_final_eval");
  const std::string classifier_path = (dir / "classifier.bin").string();
  ClassifierInfo info;
  info.test_accuracy = t.accuracy;
  save_classifier(classifier_path, *t.classifier, info);

  TrainConfig config = small_eval_run(t, dir, classifier_path);
  config.ema_decay = 0.9f;
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(run_training(config), 0);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("the final EMA generator at step 20 against the real-data floor"),
            std::string::npos)
      << log;
  const nlohmann::json final_eval =
      nlohmann::json::parse(read_file((dir / "run" / "eval.json").string(), 1 << 20));
  EXPECT_EQ(final_eval.at("generator").get<std::string>(), "EMA generator");
  EXPECT_EQ(final_eval.at("step").get<int64_t>(), 20);
  // Two panels: no metrics row carries an evaluation.
  EXPECT_EQ(read_png_gray((dir / "run" / "curves.png").string()).height, 600);

  const auto eval_json = [&](const std::string& extra, const std::string& name) {
    const std::string json = (dir / name).string();
    const runtest::BinaryResult r = runtest::run_command(
        "eval --device cpu --checkpoint " + (dir / "run" / "latest.ckpt").string() +
        " --classifier " + classifier_path + " --data " + config.data_dir +
        " --samples 200 --json " + json + extra);
    EXPECT_EQ(r.code, 0) << r.output;
    return nlohmann::json::parse(read_file(json, 1 << 20));
  };
  const nlohmann::json ema = eval_json("", "ema.json"),
                       raw = eval_json(" --raw-generator", "raw.json");
  EXPECT_EQ(ema.at("generator").get<std::string>(), "EMA generator");
  EXPECT_EQ(raw.at("generator").get<std::string>(), "raw generator");
  const double ema_fd = ema.at("model").at("frechet_distance").get<double>();
  EXPECT_NEAR(ema_fd, final_eval.at("model").at("frechet_distance").get<double>(), 1e-5 * ema_fd);
  EXPECT_NE(ema_fd, raw.at("model").at("frechet_distance").get<double>());

  TrainConfig off = config;
  off.out_dir = (dir / "run_off").string();
  off.final_eval = false;
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(run_training(off), 0);
  const std::string off_log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(off_log.find("against the real-data floor"), std::string::npos) << off_log;
  EXPECT_FALSE(fs::exists(dir / "run_off" / "eval.json"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mnistgan

namespace mnistgan {
namespace {

// A --conditional run's evaluation (at the end of the run, and `mnistgan eval` on its
// checkpoint) adds how often the classifier reads back the digit that was asked for, overall
// and per digit, and each digit's Frechet distance against that digit's test images, to the
// table and the JSON, beside the same figures of the real floor; the unconditional figures
// stay. An unconditional run's JSON has no "conditional".
TEST(EvalInTraining, ConditionalRunAddsAskedDigitAccuracyAndPerDigitFrechet) {
  TrainedClassifier& t = trained();
  const fs::path dir = fresh_dir("conditional_eval");
  const std::string classifier_path = (dir / "classifier.bin").string();
  ClassifierInfo info;
  info.test_accuracy = t.accuracy;
  save_classifier(classifier_path, *t.classifier, info);
  TrainConfig config = small_eval_run(t, dir, classifier_path);
  config.conditional = true;
  ::testing::internal::CaptureStderr();
  const int code = run_training(config);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(code, 0) << log;
  EXPECT_NE(log.find("asked digit read back"), std::string::npos) << log;
  EXPECT_NE(log.find("conditional_accuracy"), std::string::npos) << log;
  const nlohmann::json run =
      nlohmann::json::parse(read_file((dir / "run" / "eval.json").string(), 1 << 20));
  for (const char* side : {"model", "floor"}) {
    const nlohmann::json& c = run.at(side).at("conditional");
    EXPECT_EQ(c.at("class_accuracy").size(), 10u) << side;
    EXPECT_EQ(c.at("class_frechet").size(), 10u) << side;
    const double accuracy = c.at("accuracy").get<double>();
    EXPECT_GE(accuracy, 0.0) << side;
    EXPECT_LE(accuracy, 1.0) << side;
    EXPECT_TRUE(run.at(side).contains("frechet_distance")) << side;  // the unconditional figures
  }
  // The floor is real images read against their own labels: about the classifier's accuracy.
  EXPECT_GT(run.at("floor").at("conditional").at("accuracy").get<double>(), 0.8);

  const std::string json = (dir / "eval.json").string();
  const runtest::BinaryResult eval = runtest::run_command(
      "eval --device cpu --checkpoint " + (dir / "run" / "latest.ckpt").string() +
      " --classifier " + classifier_path + " --data " + config.data_dir + " --samples 200 --json " +
      json);
  EXPECT_EQ(eval.code, 0) << eval.output;
  EXPECT_NE(eval.output.find("conditional_accuracy"), std::string::npos) << eval.output;
  EXPECT_NE(eval.output.find("frechet_digit_9"), std::string::npos) << eval.output;
  const nlohmann::json j = nlohmann::json::parse(read_file(json, 1 << 20));
  EXPECT_NEAR(j.at("model").at("conditional").at("accuracy").get<double>(),
              run.at("model").at("conditional").at("accuracy").get<double>(), 0.011)
      << "the same generator, noise and asked digits as the run's final evaluation";

  TrainConfig plain = small_eval_run(t, dir, classifier_path);
  plain.out_dir = (dir / "plain").string();
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(run_training(plain), 0) << ::testing::internal::GetCapturedStderr();
  const nlohmann::json p =
      nlohmann::json::parse(read_file((dir / "plain" / "eval.json").string(), 1 << 20));
  EXPECT_FALSE(p.at("model").contains("conditional"));
  EXPECT_FALSE(p.at("floor").contains("conditional"));
  fs::remove_all(dir);
}

// The conditional figures themselves, on real test images standing in for a generator: asked
// for their own labels they are read back about as often as the classifier is right, and
// each digit's Frechet distance is small; asked for the wrong digit, almost never, and the
// per-digit distances grow.
TEST(EvalMetricsConditional, RightAndWrongLabelsOnRealImages) {
  TrainedClassifier& t = trained();
  const int64_t n = 500;
  const EvalReference reference(*t.backend, *t.classifier, t.train, t.test, n, 1,
                                /*per_class=*/true);
  ASSERT_TRUE(reference.floor().conditional.has_value());
  std::vector<uint8_t> pixels(t.test.images.pixels.end() - n * 784, t.test.images.pixels.end());
  std::vector<int32_t> right, wrong;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t label = t.test.labels[t.test.images.count - n + i];
    right.push_back(label);
    wrong.push_back((label + 1) % 10);
  }
  const FeatureSet set = embed_pixels(*t.backend, *t.classifier, pixels.data(), n);
  const EvalMetrics good = reference.evaluate(*t.backend, set, &right);
  const EvalMetrics bad = reference.evaluate(*t.backend, set, &wrong);
  ASSERT_TRUE(good.conditional && bad.conditional);
  EXPECT_GT(good.conditional->accuracy, 0.8);
  EXPECT_LT(bad.conditional->accuracy, 0.2);
  EXPECT_EQ(good.frechet, bad.frechet) << "the unconditional figures do not use the labels";
  for (int k = 0; k < 10; ++k) {
    EXPECT_LT(good.conditional->class_frechet[k], bad.conditional->class_frechet[k]) << k;
    EXPECT_GT(good.conditional->class_accuracy[k], bad.conditional->class_accuracy[k]) << k;
  }
  EXPECT_FALSE(reference.evaluate(*t.backend, set).conditional.has_value());
  const EvalReference plain(*t.backend, *t.classifier, t.train, t.test, n, 1);
  EXPECT_THROW(plain.evaluate(*t.backend, set, &right), std::logic_error);
}

}  // namespace
}  // namespace mnistgan
