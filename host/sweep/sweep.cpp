// sweep.cpp: see sweep.h.
#include "sweep/sweep.h"

#include <unistd.h>  // isatty

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <stdexcept>
#include <tuple>  // std::tie

#include "core/backend.h"
#include "core/backend_buffer.h"  // BackendBuffer
#include "core/op_recorder.h"     // ModelSlab
#include "eval/eval.h"       // Evaluator
#include "io/atomic_file.h"  // write_file_atomic, ensure_writable_dir, IoError
#include "io/idx.h"          // load_mnist
#include "sweep/comm.h"
#include "sweep/grid.h"
#include "sweep/leaderboard.h"
#include "sweep/run_group.h"
#include "train/progress.h"  // format_duration, StatusLine

namespace mnistgan {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

constexpr size_t kMaxSweepFileBytes = 64 << 20;

// sweep.json's run list: what makes two sweeps into one folder the same sweep.
ordered_json runs_manifest(const std::vector<SweepRun>& runs) {
  ordered_json list = ordered_json::array();
  for (const SweepRun& run : runs)
    list.push_back({{"name", run.name}, {"settings", run.settings}, {"args", run.args}});
  return list;
}

// Writes DIR/sweep.json, or checks that the one there lists the same runs.
void claim_sweep_dir(const fs::path& dir, const std::string& grid,
                     const std::vector<SweepRun>& runs, const std::string& shard) {
  ensure_writable_dir(dir.string());
  const fs::path path = dir / "sweep.json";
  const ordered_json manifest = runs_manifest(runs);
  std::error_code ec;
  if (fs::exists(path, ec)) {
    ordered_json old;
    try {
      old = ordered_json::parse(read_file(path.string(), kMaxSweepFileBytes));
    } catch (const ordered_json::exception& e) {
      throw std::invalid_argument(path.string() + ": not a sweep file (" + e.what() +
                                  "); choose another --out");
    }
    if (!old.contains("runs") || old.at("runs") != manifest)
      throw std::invalid_argument(
          "--out: " + dir.string() + " holds a sweep of other runs (" + path.string() +
          "); rerun with the grid it was made with to resume it, or choose another --out");
    return;
  }
  ordered_json j = {{"format", "mnistgan sweep"}, {"grid", grid}};
  if (!shard.empty()) j["shard"] = shard;
  j["runs"] = manifest;
  write_file_atomic(path.string(), j.dump(2) + "\n");
}

// The sweep's single progress line: runs going/done/failed, steps, rate and ETA.
class SweepProgress {
 public:
  SweepProgress(std::string prefix, bool live) : prefix_(std::move(prefix)), status_(live) {}

  void update(int going, int done, int failed, int64_t steps, int64_t total, double steps_per_s,
              bool force) {
    const auto now = std::chrono::steady_clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    if (!force && since < (status_.live() ? 0.25 : 10.0)) return;
    last_ = now;
    const double eta = steps_per_s > 0 ? (total - steps) / steps_per_s : NAN;
    char line[256];
    std::snprintf(line, sizeof(line),
                  "%sruns: %d training, %d done, %d failed | steps %" PRId64 "/%" PRId64
                  " (%3.0f%%) | %.1f GAN-steps/s | ETA %s",
                  prefix_.c_str(), going, done, failed, steps, total,
                  100.0 * steps / std::max<int64_t>(total, 1), steps_per_s,
                  format_duration(eta).c_str());
    status_.show(line);
  }
  void message(const std::string& text) { status_.message(text); }
  void finish() { status_.finish(); }

 private:
  std::string prefix_;
  StatusLine status_;
  std::chrono::steady_clock::time_point last_{};
};

// One run of this process's share: its grid entry, the run, and where it stands.
struct Member {
  const SweepRun* run = nullptr;
  std::unique_ptr<TrainingRun> training;
  std::string status = "pending";
  int64_t steps_done = 0, total = 0;
  std::string message;
};

class Sweep {
 public:
  Sweep(const SweepOptions& options, const SweepTestHooks& hooks)
      : options_(options), hooks_(hooks) {}

  int go() {
    options_.validate();
    comm_ = make_sweep_comm();
    int share = comm_->rank(), shares = comm_->size();
    if (!options_.shard.empty()) {
      if (comm_->size() > 1)
        throw std::invalid_argument(
            "--shard: not under mpirun (the ranks already share the runs); use one or the other");
      std::tie(share, shares) = parse_shard(options_.shard);
    }
    try {
      return train_share(share, shares);
    } catch (...) {
      if (comm_->size() > 1) {
        progress_finish();
        comm_->abort(1);  // the other ranks would wait for this one forever
      }
      throw;
    }
  }

 private:
  int train_share(int share, int shares) {
    const fs::path out(options_.out);
    grid_ = parse_sweep_grid(options_.grid, options_.out, options_.device);
    const std::vector<SweepRun> mine = sweep_share(grid_, share, shares);
    const bool leader = comm_->rank() == 0;
    if (leader) claim_sweep_dir(out, options_.grid, grid_, options_.shard);
    ensure_writable_dir((out / "runs").string());
    ensure_writable_dir((out / "status").string());
    const std::string who = comm_->size() > 1 ? "rank " + std::to_string(comm_->rank()) + "/" +
                                                    std::to_string(comm_->size()) + ": "
                            : !options_.shard.empty() ? "shard " + options_.shard + ": "
                                                      : "";
    progress_ = std::make_unique<SweepProgress>("mnistgan: sweep: " + who,
                                                isatty(STDERR_FILENO) != 0);
    device_ = resolve_device(options_.device);
    std::fprintf(stderr,
                 "mnistgan: sweep: %s%zu runs in the grid, %zu here, on %s%s | %s\n", who.c_str(),
                 grid_.size(), mine.size(), device_.c_str(),
                 device_ == "cuda" ? (" (GPU " + std::to_string(comm_->local_rank()) + ")").c_str()
                                   : "",
                 options_.out.c_str());

    // The leaderboard's runs: every run of the grid for a single process or MPI's rank 0,
    // this share's for a --shard process (merge_sweeps joins the shares).
    if (leader)
      for (const SweepRun& run : options_.shard.empty() ? grid_ : mine)
        board_[run.name] = read_run_record(out, run);

    note_missing_classifiers(mine);
    start_members(mine);
    install_stop_signal_handlers();
    const int stop_signal = train_members();
    progress_finish();
    finish_leaderboard();
    return stop_signal != 0 ? 128 + stop_signal : 0;
  }

  // The runs keep train's end-of-run note to themselves (quiet): say once per classifier
  // file that runs without it get no evaluation, hence no rank.
  void note_missing_classifiers(const std::vector<SweepRun>& mine) {
    std::set<std::string> noted;
    for (const SweepRun& run : mine) {
      const std::string& path = run.config.classifier;
      std::error_code ec;
      if (!run.config.final_eval || fs::exists(path, ec) || !noted.insert(path).second) continue;
      progress_->message("mnistgan: sweep: no feature classifier at " + path +
                         ", so runs using it are not evaluated or ranked; make one with "
                         "`mnistgan classifier --out " + path + "` (under a minute)");
    }
  }

  // Every run of the share set up before any trains: failed runs stay failed, finished
  // runs stay done, the others resume from their latest checkpoint or start fresh.
  void start_members(const std::vector<SweepRun>& mine) {
    const fs::path out(options_.out);
    reserve_group_memory(mine);
    for (const SweepRun& run : mine) {
      Member m;
      m.run = &*std::find_if(grid_.begin(), grid_.end(),
                             [&](const SweepRun& r) { return r.name == run.name; });
      const RunRecord previous = read_run_record(out, *m.run);
      if (previous.status == "failed") {
        m.status = "failed";
        m.steps_done = previous.step;
        m.total = previous.total_steps;
        m.message = previous.message;
        members_.push_back(std::move(m));
        continue;
      }
      TrainConfig config = m.run->config;
      const fs::path latest = fs::path(config.out_dir) / "latest.ckpt";
      std::error_code ec;
      if (fs::exists(latest, ec)) config.resume = latest.string();
      const auto hook = hooks_.runs.find(run.name);
      m.training = std::make_unique<TrainingRun>(
          config, hook != hooks_.runs.end() ? hook->second : RunTestHooks{},
          environment_for(*m.run));
      bool to_train = false;
      try {
        to_train = m.training->start();
      } catch (const std::exception& e) {
        throw std::runtime_error("run " + run.name + ": " + e.what());
      }
      m.steps_done = m.training->state().steps_done();
      m.total = m.training->total_steps();
      m.status = to_train ? "running" : "done";
      write_run_status(out, *m.run, m.status, m.steps_done, m.total);
      if (to_train) {
        groups_[m.run->group].add(m.training->state());
      } else {
        m.training.reset();  // nothing left to do: free its backend memory
      }
      members_.push_back(std::move(m));
    }
  }

  // Lock-step rounds over the groups until every run has ended; returns the stop signal
  // (0: none).
  int train_members() {
    const auto begin = std::chrono::steady_clock::now();
    int64_t steps_at_begin = 0;
    for (const Member& m : members_) steps_at_begin += progress_steps(m);
    int stop_signal = 0;
    publish_news();
    std::map<const TrainingState*, Member*> member_of;
    for (Member& m : members_)
      if (m.training) member_of[&m.training->state()] = &m;
    while (std::any_of(groups_.begin(), groups_.end(),
                       [](const auto& g) { return !g.second.empty(); })) {
      for (auto& [key, group] : groups_) {
        if (group.empty()) continue;
        group.step();
        const std::vector<TrainingState*> stepped = group.members();
        for (TrainingState* state : stepped) {
          Member& m = *member_of.at(state);
          TrainingRun* training = m.training.get();
          const RunStatus status = after_step(m);
          m.steps_done = state->steps_done();
          if (status == RunStatus::kRunning) {
            if (training->last_eval_step() == m.steps_done) note_news(m);
            continue;
          }
          group.remove(*state);
          if (status == RunStatus::kStopped) {
            stop_signal = training->exit_code() - 128;
          } else if (status == RunStatus::kDone) {
            m.status = "done";
          } else {
            m.status = "failed";
            m.message = last_line_[m.run->name];
          }
          note_news(m);
          m.training.reset();
        }
      }
      publish_news();
      if (std::any_of(groups_.begin(), groups_.end(),
                      [](const auto& g) { return !g.second.empty(); }))
        show_progress(begin, steps_at_begin, false);  // the last line comes after the loop
    }
    show_progress(begin, steps_at_begin, true);
    return stop_signal;
  }

  RunStatus after_step(Member& m) {
    try {
      return m.training->after_step();
    } catch (const IoError& e) {
      throw IoError("run " + m.run->name + ": " + e.what() + m.training->after_failed_write());
    } catch (const std::exception& e) {
      throw std::runtime_error("run " + m.run->name + ": " + e.what());
    }
  }

  // A run evaluated, ended or failed: its status file now, its record with the next
  // publish_news().
  void note_news(Member& m) {
    write_run_status(options_.out, *m.run, m.status, m.steps_done, m.total, m.message);
    news_.push_back(&m);
  }

  // Records of the runs with news go to the leaderboard: rank 0's own, or sent to it.
  void publish_news() {
    bool changed = !news_.empty();
    for (Member* m : news_) {
      RunRecord record = read_run_record(options_.out, *m->run);
      if (comm_->rank() == 0) {
        board_[record.name] = std::move(record);
      } else {
        comm_->send_record(encode_run_record(record));
      }
    }
    news_.clear();
    if (comm_->rank() != 0) return;
    for (const std::vector<uint8_t>& bytes : comm_->receive_records()) {
      RunRecord record = decode_run_record(bytes);
      board_[record.name] = std::move(record);
      changed = true;
    }
    if (changed) write_board();
  }

  void finish_leaderboard() {
    publish_news();
    const std::vector<std::vector<uint8_t>> rest = comm_->finish();
    if (comm_->rank() != 0) return;
    for (const std::vector<uint8_t>& bytes : rest) {
      RunRecord record = decode_run_record(bytes);
      board_[record.name] = std::move(record);
    }
    write_board();
    print_summary();
  }

  void write_board() {
    std::vector<RunRecord> records;
    for (const SweepRun& run : grid_) {
      const auto found = board_.find(run.name);
      if (found != board_.end()) records.push_back(found->second);
    }
    write_leaderboard(options_.out, records, options_.best);
  }

  void print_summary() {
    std::vector<RunRecord> records;
    for (const auto& [name, record] : board_) records.push_back(record);
    int done = 0, failed = 0;
    for (const RunRecord& r : records) {
      done += r.status == "done";
      failed += r.status == "failed";
    }
    const std::vector<RankedRecord> ranked = rank_records(records);
    std::string best;
    if (!ranked.empty() && ranked.front().rank == 1) {
      const RunRecord& r = *ranked.front().record;
      char text[256];
      std::snprintf(text, sizeof(text), "; best %s: Frechet %.3f (floor %.3f)", r.name.c_str(),
                    r.eval.at("model").value("frechet_distance", NAN),
                    r.eval.contains("floor") ? r.eval.at("floor").value("frechet_distance", NAN)
                                             : NAN);
      best = text;
    }
    std::fprintf(stderr, "mnistgan: sweep: %zu runs: %d done, %d failed, %zu not finished%s\n",
                 records.size(), done, failed, records.size() - done - failed, best.c_str());
    std::fprintf(stderr, "mnistgan: sweep: leaderboard %s (.json, .png)\n",
                 (fs::path(options_.out) / "leaderboard.csv").string().c_str());
  }

  // A run's steps toward the sweep's total: a failed run has none left to do.
  static int64_t progress_steps(const Member& m) {
    return m.status == "failed" ? m.total : m.steps_done;
  }

  void show_progress(std::chrono::steady_clock::time_point begin, int64_t steps_at_begin,
                     bool force) {
    int going = 0, done = 0, failed = 0;
    int64_t steps = 0, total = 0;
    for (const Member& m : members_) {
      going += m.status == "running" && m.training != nullptr;
      done += m.status == "done";
      failed += m.status == "failed";
      steps += progress_steps(m);
      total += m.total;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    const double rate = seconds > 0 ? (steps - steps_at_begin) / seconds : 0;
    progress_->update(going, done, failed, steps, total, rate, force);
  }

  void progress_finish() {
    if (progress_) progress_->finish();
  }

  // ---- what the runs share: the backend, the data, the evaluators ----------------------

  // On a backend that issues a group's ops as one launch (CUDA), each group's runs get equal
  // slabs of one allocation, so their buffers lie a constant stride apart (op_recorder.h).
  // Sized by making one fresh run of the group; failed runs get none.
  void reserve_group_memory(const std::vector<SweepRun>& mine) {
    std::map<std::string, std::vector<const SweepRun*>> by_group;
    for (const SweepRun& run : mine)
      if (read_run_record(options_.out, run).status != "failed")
        by_group[run.group].push_back(&run);
    for (const auto& [key, runs] : by_group) {
      Backend& backend = backend_for(key);
      if (runs.size() < 2 || !backend.runs_models_together()) continue;
      TrainConfig config = runs.front()->config;
      config.resume.clear();
      const MnistSplit& train = split(config.data_dir, "train");
      const size_t bytes = TrainingState::slab_bytes(backend, config, train.images, train.labels);
      GroupMemory& memory = group_memory_[key];
      memory.arena = BackendBuffer<uint8_t>(backend, bytes * runs.size());
      memory.slabs.resize(runs.size());
      for (size_t i = 0; i < runs.size(); ++i) {
        memory.slabs[i].base = memory.arena.get() + i * bytes;
        memory.slabs[i].size = bytes;
        slab_of_[runs[i]->name] = &memory.slabs[i];
      }
    }
  }

  RunEnvironment environment_for(const SweepRun& run) {
    RunEnvironment env;
    env.backend = &backend_for(run.group);
    const auto slab = slab_of_.find(run.name);
    if (slab != slab_of_.end()) env.slab = slab->second;
    env.train = &split(run.config.data_dir, "train");
    env.evaluator = [this](Backend& backend, const TrainConfig& config,
                           const MnistSplit& train) -> Evaluator& {
      return evaluator(backend, config, train);
    };
    env.message = [this, name = run.name](const std::string& line) {
      const std::string prefix = "mnistgan: ";
      const std::string text = line.rfind(prefix, 0) == 0 ? line.substr(prefix.size()) : line;
      last_line_[name] = text;  // a failed run's status keeps the divergence message
      progress_->message(prefix + name + ": " + text);
    };
    env.quiet = true;
    env.install_signal_handlers = false;
    return env;
  }

  // The CPU backend is one for the whole process (it keeps no state between ops). On CUDA
  // each group has its own backend (its own stream), on the GPU of this rank's local rank:
  // a group's runs must share one, since their ops are issued together (run_group.h).
  Backend& backend_for(const std::string& group) {
    std::unique_ptr<Backend>& slot = backends_[device_ == "cpu" ? std::string() : group];
    if (!slot)
      slot = device_ == "cpu" ? make_cpu_backend() : make_cuda_backend(comm_->local_rank());
    return *slot;
  }

  const MnistSplit& split(const std::string& data_dir, const std::string& which) {
    std::unique_ptr<MnistSplit>& slot = splits_[data_dir + "\n" + which];
    if (!slot) slot = std::make_unique<MnistSplit>(load_mnist(data_dir, which));
    return *slot;
  }

  // One evaluator per backend and (classifier, samples, seed, conditional, data): the floor
  // depends on the seed, so a seed sweep makes one per seed.
  Evaluator& evaluator(Backend& backend, const TrainConfig& c, const MnistSplit& train) {
    const std::string key = std::to_string(reinterpret_cast<uintptr_t>(&backend)) + "\n" +
                            c.classifier + "\n" + std::to_string(c.eval_samples) + "\n" +
                            std::to_string(c.seed) + "\n" + (c.conditional ? "c" : "u") + "\n" +
                            c.data_dir;
    std::unique_ptr<Evaluator>& slot = evaluators_[key];
    if (!slot) {
      const auto begin = std::chrono::steady_clock::now();
      slot = std::make_unique<Evaluator>(backend, c.classifier, train, split(c.data_dir, "t10k"),
                                         c.eval_samples, c.seed, c.conditional);
      char line[256];
      std::snprintf(line, sizeof(line),
                    "mnistgan: sweep: evaluator for seed %" PRIu64 ": %" PRId64
                    " samples | floor Frechet %.3f (%.1fs)",
                    c.seed, c.eval_samples, slot->floor().frechet,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - begin)
                        .count());
      progress_->message(line);
    }
    return *slot;
  }

  SweepOptions options_;
  SweepTestHooks hooks_;
  std::unique_ptr<SweepComm> comm_;
  std::string device_;  // "cpu" or "cuda"
  std::vector<SweepRun> grid_;
  // Declared before the members that borrow them, so they are destroyed after them.
  std::map<std::string, std::unique_ptr<Backend>> backends_;  // by group ("" on the CPU)
  struct GroupMemory {
    BackendBuffer<uint8_t> arena;  // every run's slab, one after another
    std::vector<ModelSlab> slabs;
  };
  std::map<std::string, GroupMemory> group_memory_;  // by group, where slabs are used
  std::map<std::string, ModelSlab*> slab_of_;        // by run name
  std::map<std::string, std::unique_ptr<MnistSplit>> splits_;
  std::map<std::string, std::unique_ptr<Evaluator>> evaluators_;
  std::unique_ptr<SweepProgress> progress_;
  std::vector<Member> members_;
  std::map<std::string, RunGroup> groups_;
  std::vector<Member*> news_;
  std::map<std::string, RunRecord> board_;  // rank 0: the latest record of every run
  std::map<std::string, std::string> last_line_;  // each run's latest console line
};

}  // namespace

void SweepOptions::validate() const {
  validate_device_flag(device);
  if (merge.empty() && grid.empty())
    throw std::invalid_argument("--grid: give the grid file (or --merge DIR... to merge shards)");
  if (!merge.empty() && !grid.empty())
    throw std::invalid_argument("--merge: merges finished folders; it takes no --grid");
  if (!merge.empty() && !shard.empty())
    throw std::invalid_argument("--merge: takes no --shard");
  if (out.empty()) throw std::invalid_argument("--out: give the sweep's folder");
  if (best < 1 || best > 64) throw std::invalid_argument("--best: must be between 1 and 64");
  if (!shard.empty()) parse_shard(shard);
}

std::pair<int, int> parse_shard(const std::string& text) {
  static const std::regex form("([0-9]{1,6})/([0-9]{1,6})");
  std::smatch m;
  if (std::regex_match(text, m, form)) {
    const int index = std::stoi(m[1]), count = std::stoi(m[2]);
    if (count >= 1 && index < count) return {index, count};
  }
  throw std::invalid_argument("--shard: '" + text +
                              "' is not a share: give I/N with 0 <= I < N, e.g. 0/4 (a Slurm "
                              "array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)");
}

int run_sweep(const SweepOptions& options, const SweepTestHooks& hooks) {
  Sweep sweep(options, hooks);
  return sweep.go();
}

int merge_sweeps(const SweepOptions& options) {
  options.validate();
  std::vector<std::string> order;              // run names, first seen first
  std::map<std::string, RunRecord> records;    // the furthest record of each run
  auto rank_of = [](const RunRecord& r) {
    return r.status == "done" ? 3 : r.status == "failed" ? 2 : r.status == "running" ? 1 : 0;
  };
  for (const std::string& dir : options.merge) {
    const fs::path manifest = fs::path(dir) / "sweep.json";
    std::error_code ec;
    if (!fs::exists(manifest, ec))
      throw std::invalid_argument("--merge: " + dir + " is not a sweep folder (no sweep.json)");
    ordered_json j;
    try {
      j = ordered_json::parse(read_file(manifest.string(), kMaxSweepFileBytes));
      for (const ordered_json& entry : j.at("runs")) {
        SweepRun run;
        run.name = entry.at("name").get<std::string>();
        run.settings = entry.at("settings");
        run.config.out_dir = (fs::path(dir) / "runs" / run.name).string();
        // A share's folder holds status files of its own runs only; the others are not its.
        if (!fs::exists(run_status_path(dir, run.name), ec)) {
          if (!records.count(run.name)) {
            order.push_back(run.name);
            RunRecord pending;
            pending.name = run.name;
            pending.settings = run.settings;
            records[run.name] = pending;
          }
          continue;
        }
        RunRecord record = read_run_record(dir, run);
        if (!records.count(run.name)) order.push_back(run.name);
        auto found = records.find(run.name);
        if (found == records.end() || rank_of(record) > rank_of(found->second) ||
            (rank_of(record) == rank_of(found->second) && record.step > found->second.step))
          records[run.name] = std::move(record);
      }
    } catch (const ordered_json::exception& e) {
      throw std::invalid_argument("--merge: " + manifest.string() + ": not a sweep file (" +
                                  e.what() + ")");
    }
  }
  ensure_writable_dir(options.out);
  std::vector<RunRecord> merged;
  for (const std::string& name : order) merged.push_back(records.at(name));
  write_leaderboard(options.out, merged, options.best);
  int done = 0, failed = 0;
  for (const RunRecord& r : merged) {
    done += r.status == "done";
    failed += r.status == "failed";
  }
  std::fprintf(stderr,
               "mnistgan: sweep: merged %zu folders: %zu runs, %d done, %d failed | leaderboard "
               "%s (.json, .png)\n",
               options.merge.size(), merged.size(), done, failed,
               (fs::path(options.out) / "leaderboard.csv").string().c_str());
  return 0;
}

}  // namespace mnistgan
