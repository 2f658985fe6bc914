// run_group.cpp: see run_group.h.
#include "sweep/run_group.h"

#include <algorithm>

namespace mnistgan {

void RunGroup::remove(TrainingState& member) {
  members_.erase(std::remove(members_.begin(), members_.end(), &member), members_.end());
}

void RunGroup::step() {
  for (TrainingState* member : members_) member->step();
}

}  // namespace mnistgan
