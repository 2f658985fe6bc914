// run_group.cpp: see run_group.h.
#include "sweep/run_group.h"

#include <algorithm>

namespace mnistgan {

void RunGroup::add(TrainingState& member) {
  members_.push_back(&member);
  stepper_.forget_graph();
}

void RunGroup::remove(TrainingState& member) {
  members_.erase(std::remove(members_.begin(), members_.end(), &member), members_.end());
  stepper_.forget_graph();
}

}  // namespace mnistgan
