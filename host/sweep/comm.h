// comm.h: how the processes of one sweep talk: one process alone, or MPI ranks
// (`mpirun -np R mnistgan sweep ...`). Only comm_mpi.cpp includes MPI; a build without MPI
// links comm_single.cpp instead, and the rest of the sweep is the same code either way.
//
// The protocol is one-way: every rank trains its share of the runs and sends rank 0 the
// record of a run (leaderboard.h, CBOR bytes) whenever it has news (an evaluation, the end,
// a failure); rank 0 merges them into the one leaderboard. Sends never wait for rank 0, and
// no rank waits for another until finish(), so ranks with different work never deadlock.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace mnistgan {

class SweepComm {
 public:
  virtual ~SweepComm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The rank's index among the ranks on its machine (OMPI_COMM_WORLD_LOCAL_RANK): its GPU.
  virtual int local_rank() const = 0;
  // Ranks other than 0: queue a record for rank 0 (returns at once).
  virtual void send_record(std::vector<uint8_t> record) = 0;
  // Rank 0: the records that have arrived since the last call (never waits).
  virtual std::vector<std::vector<uint8_t>> receive_records() = 0;
  // Every rank once its runs are over. Rank 0: returns the records still to come, once
  // every other rank has finished; other ranks: returns {} once their sends are delivered.
  virtual std::vector<std::vector<uint8_t>> finish() = 0;
  // Ends every rank's process (a rank failed): MPI_Abort, or nothing alone.
  virtual void abort(int exit_code) = 0;
};

// MPI when this build has it and the process was started by an MPI launcher (the launcher's
// rank variables are set); otherwise the single process.
std::unique_ptr<SweepComm> make_sweep_comm();
// Whether this build has MPI (CMake found it).
bool sweep_mpi_built();

// The single process (rank 0 of 1): what make_sweep_comm gives without MPI.
std::unique_ptr<SweepComm> make_single_process_comm();

}  // namespace mnistgan
