// comm_mpi.cpp: the sweep's processes as MPI ranks (built when CMake finds MPI). See comm.h
// for the protocol: records go to rank 0 as tagged point-to-point messages (MPI_Isend, the
// buffers kept until delivered); rank 0 polls with MPI_Iprobe between steps and, at the end,
// receives until every other rank has sent its "finished" message.
#include <mpi.h>

#include <cstdio>
#include <cstdlib>  // getenv, atoi
#include <deque>
#include <stdexcept>
#include <string>

#include "sweep/comm.h"

namespace mnistgan {

namespace {

constexpr int kTagRecord = 1, kTagFinished = 2;

void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string("MPI: ") + call + " failed: " + std::string(text, length));
}

class MpiComm final : public SweepComm {
 public:
  MpiComm() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) check(MPI_Init(nullptr, nullptr), "MPI_Init");
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (local == nullptr) local = std::getenv("MPI_LOCALRANKID");  // MPICH
    local_rank_ = local != nullptr ? std::atoi(local) : 0;
  }
  ~MpiComm() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }

  void send_record(std::vector<uint8_t> record) override {
    if (rank_ == 0) return;
    pending_.push_back({std::move(record), MPI_REQUEST_NULL});
    Pending& p = pending_.back();
    check(MPI_Isend(p.bytes.data(), static_cast<int>(p.bytes.size()), MPI_BYTE, 0, kTagRecord,
                    MPI_COMM_WORLD, &p.request),
          "MPI_Isend");
    reap_sends();
  }

  std::vector<std::vector<uint8_t>> receive_records() override {
    std::vector<std::vector<uint8_t>> records;
    if (rank_ != 0) return records;
    while (true) {
      int arrived = 0;
      MPI_Status status;
      check(MPI_Iprobe(MPI_ANY_SOURCE, kTagRecord, MPI_COMM_WORLD, &arrived, &status),
            "MPI_Iprobe");
      if (!arrived) return records;
      records.push_back(receive(status));
    }
  }

  std::vector<std::vector<uint8_t>> finish() override {
    std::vector<std::vector<uint8_t>> records;
    if (rank_ != 0) {
      // The finished message follows the records on the same (ordered) channel.
      check(MPI_Send(nullptr, 0, MPI_BYTE, 0, kTagFinished, MPI_COMM_WORLD), "MPI_Send");
      for (Pending& p : pending_) check(MPI_Wait(&p.request, MPI_STATUS_IGNORE), "MPI_Wait");
      pending_.clear();
      return records;
    }
    int finished = 0;
    while (finished < size_ - 1) {
      MPI_Status status;
      check(MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &status), "MPI_Probe");
      if (status.MPI_TAG == kTagFinished) {
        check(MPI_Recv(nullptr, 0, MPI_BYTE, status.MPI_SOURCE, kTagFinished, MPI_COMM_WORLD,
                       MPI_STATUS_IGNORE),
              "MPI_Recv");
        ++finished;
      } else {
        records.push_back(receive(status));
      }
    }
    return records;
  }

  void abort(int exit_code) override {
    if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
  }

 private:
  struct Pending {
    std::vector<uint8_t> bytes;
    MPI_Request request;
  };

  std::vector<uint8_t> receive(const MPI_Status& probed) {
    int count = 0;
    check(MPI_Get_count(&probed, MPI_BYTE, &count), "MPI_Get_count");
    std::vector<uint8_t> bytes(static_cast<size_t>(count));
    check(MPI_Recv(bytes.data(), count, MPI_BYTE, probed.MPI_SOURCE, probed.MPI_TAG,
                   MPI_COMM_WORLD, MPI_STATUS_IGNORE),
          "MPI_Recv");
    return bytes;
  }

  // Frees the buffers of delivered sends (a deque: buffers never move while in flight).
  void reap_sends() {
    while (!pending_.empty()) {
      int done = 0;
      check(MPI_Test(&pending_.front().request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (!done) return;
      pending_.pop_front();
    }
  }

  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::deque<Pending> pending_;
};

// Set by Open MPI's and MPICH's launchers (and Slurm's srun with PMIx).
bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

}  // namespace

std::unique_ptr<SweepComm> make_sweep_comm() {
  if (!launched_by_mpi()) return make_single_process_comm();
  return std::make_unique<MpiComm>();
}

bool sweep_mpi_built() { return true; }

}  // namespace mnistgan
