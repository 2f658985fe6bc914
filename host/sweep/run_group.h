// run_group.h: the runs of a sweep that share shapes and schedule (grid.h's group key),
// stepped in lock-step: step s of every member before step s + 1 of any.
//
// step() is the one call a sweep (and the sweep rows of `mnistgan bench`) makes per group
// step: train/trainer.h's LockStepper over the members, so op i of every member is issued as
// one Backend::run_models() call (one model-indexed launch on CUDA where the kernels allow)
// and, on CUDA, the whole group step is one captured graph. Every member must be on the same
// backend (a CUDA backend holds one graph: one backend per group).
#pragma once

#include <vector>

#include "train/trainer.h"  // TrainingState, LockStepper

namespace mnistgan {

class RunGroup {
 public:
  void add(TrainingState& member);
  // Members that are done, failed or stopped leave the group before its next step.
  void remove(TrainingState& member);
  void step() { stepper_.step(members_); }
  const std::vector<TrainingState*>& members() const { return members_; }
  bool empty() const { return members_.empty(); }
  const LockStepper& stepper() const { return stepper_; }

 private:
  std::vector<TrainingState*> members_;
  LockStepper stepper_;
};

}  // namespace mnistgan
