// comm_single.cpp: the sweep's processes without MPI: one process, rank 0 of 1.
#include "sweep/comm.h"

namespace mnistgan {

std::unique_ptr<SweepComm> make_sweep_comm() { return make_single_process_comm(); }
bool sweep_mpi_built() { return false; }

}  // namespace mnistgan
