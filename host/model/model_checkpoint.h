// model_checkpoint.h: a Gan's tensors and optimiser state in a Checkpoint (io/checkpoint.h).
#pragma once

#include <string>

#include "core/backend.h"
#include "io/checkpoint.h"
#include "model/model.h"

namespace mnistgan {

// Model <-> checkpoint: every parameter tensor as "<name>", and its Adam moments as
// "<name>@adam_m" / "<name>@adam_v"; the Adam step counts go in the header. With the EMA
// generator enabled, G's averaged weights as "<name>@ema".
void store_model(Backend& backend, Gan& gan, Checkpoint& checkpoint);
// Throws CheckpointError naming the first missing or mis-shaped tensor. When the checkpoint
// holds "@ema" tensors they are loaded into the EMA generator (enabling it); returns whether
// it did. A checkpoint without them (version 1, or a run with --ema-decay 0) leaves the
// EMA generator as it was.
bool restore_model(Backend& backend, Gan& gan, const Checkpoint& checkpoint,
                   const std::string& source, bool with_optimizer = true);
// Whether the checkpoint holds an EMA generator.
bool checkpoint_has_ema(const Checkpoint& checkpoint);

}  // namespace mnistgan
