// run_group.h: the runs of a sweep that share shapes and schedule (grid.h's group key),
// stepped in lock-step: step s of every member before step s + 1 of any.
//
// step() is the one call a sweep (and the sweep rows of `mnistgan bench`) makes per group
// step. Today it issues each member's own TrainingState::step() in turn: on the CPU one after
// another; on CUDA each member's CUDA graph, on its own backend and stream, launched one after
// another from this thread. The batched step (one model-indexed launch sequence for every
// member) is to replace this body without changing its callers.
#pragma once

#include <vector>

#include "train/trainer.h"  // TrainingState

namespace mnistgan {

class RunGroup {
 public:
  void add(TrainingState& member) { members_.push_back(&member); }
  // Members that are done, failed or stopped leave the group before its next step.
  void remove(TrainingState& member);
  void step();
  const std::vector<TrainingState*>& members() const { return members_; }
  bool empty() const { return members_.empty(); }

 private:
  std::vector<TrainingState*> members_;
};

}  // namespace mnistgan
