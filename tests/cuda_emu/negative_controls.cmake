# negative_controls.cmake: planted bugs in copies of real kernels, each of which an emulated
# test must catch (included from CMakeLists.txt when MNISTGAN_CUDA_EMU and MNISTGAN_TESTS).
#
# Each control copies one source file into the build folder with one exact text replaced
# (configure fails if the text is gone, so a control cannot go stale silently), builds a test
# binary in which that copy replaces the real object, and registers a ctest
# `emu_negative.<name>` that passes only if the named tests report a gtest FAILURE.
#
# mnistgan_negative_control(name file text-to-find replacement tests-that-must-fail [ASAN|TSAN])
# ASAN: the control is built against the ASan+UBSan emulation and passes only on an
# AddressSanitizer report (for bugs that read out of bounds without changing a result).
# TSAN: built against the ThreadSanitizer emulation; passes only on a ThreadSanitizer report
# (for races that give the right answer in every serial order).
function(mnistgan_negative_control name file from to filter)
  set(asan_flags "")
  set(core mnistgan_cuda_emu_backends)
  set(expect "\\[  FAILED  \\]")
  if("ASAN" IN_LIST ARGN)
    if(NOT TARGET mnistgan_cuda_emu_asan)
      return()
    endif()
    set(asan_flags -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    set(core mnistgan_cuda_emu_asan_backends)
    set(expect "ERROR: AddressSanitizer")
  endif()
  if("TSAN" IN_LIST ARGN)
    if(NOT TARGET mnistgan_cuda_emu_tsan)
      return()
    endif()
    set(asan_flags -fsanitize=thread -g)
    set(core mnistgan_cuda_emu_tsan_backends)
    set(expect "WARNING: ThreadSanitizer")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${file})
  file(READ ${CMAKE_CURRENT_SOURCE_DIR}/${file} text)
  string(FIND "${text}" "${from}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "negative control ${name}: the text to mutate is no longer in ${file}; "
                        "update tests/cuda_emu/negative_controls.cmake")
  endif()
  string(REPLACE "${from}" "${to}" mutated "${text}")
  get_filename_component(base ${file} NAME)
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/negative_controls/${name})
  file(CONFIGURE OUTPUT ${dir}/${base} CONTENT "${mutated}" @ONLY)
  file(CONFIGURE OUTPUT ${dir}/${base}.cpp CONTENT "#include \"${dir}/${base}\"\n")
  # The mutated object is linked directly, so the linker never pulls the real one out of
  # the mnistgan_cuda_emu archive (every symbol it would supply is already defined).
  add_executable(emu_negative_${name} ${dir}/${base}.cpp
                 $<TARGET_OBJECTS:mnistgan_emu_kernel_test_objs>)
  target_compile_options(emu_negative_${name} PRIVATE -ffp-contract=off -Wno-unknown-pragmas
                         -Wno-sign-compare ${asan_flags})
  target_compile_definitions(emu_negative_${name} PRIVATE __CUDA_ARCH__=900)
  target_include_directories(emu_negative_${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/kernels
                             ${CMAKE_CURRENT_SOURCE_DIR}/tests ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda_emu)
  target_link_libraries(emu_negative_${name} PRIVATE ${core} mnistgan_op_cases GTest::gtest
                        GTest::gtest_main)
  add_test(NAME emu_negative.${name}
           COMMAND emu_negative_${name} --gtest_filter=${filter})
  set_tests_properties(emu_negative.${name} PROPERTIES
                       PASS_REGULAR_EXPRESSION "${expect}" TIMEOUT 900)
  if("TSAN" IN_LIST ARGN)  # the first report is the answer: stop there
    set_tests_properties(emu_negative.${name} PROPERTIES
                         ENVIRONMENT "TSAN_OPTIONS=halt_on_error=1;OPENBLAS_NUM_THREADS=1")
  endif()
endfunction()

mnistgan_negative_control(mbd_no_syncthreads kernels/mbd.cu
  "load_tile<kMaxC, kTJ>(Mg, K, C, j0, tj, blockIdx.x * kLanesK, S);\n    __syncthreads();"
  "load_tile<kMaxC, kTJ>(Mg, K, C, j0, tj, blockIdx.x * kLanesK, S);"
  Ops/CudaOpCases.MatchCpu/mbd_forward:Ops/CudaOpCases.MatchCpu/mbd_backward)
# The barrier that keeps the next tile's load from overwriting S while other warps still
# read it. In the emulation a block's fibers switch only at barriers, so the answer can stay
# right; the race is in a templated kernel's shared memory, which TSan sees since emu.cpp
# resets those statics between blocks.
mnistgan_negative_control(mbd_tile_overwritten_while_read kernels/mbd.cu
  "    __syncthreads();  // before the next tile overwrites S\n" ""
  MbdModelsCuda.SeveralRowTilesMatchCpu TSAN)
mnistgan_negative_control(gemm_tile_no_syncthreads kernels/dev/linear_dev.cu
  "    __syncthreads();  // everyone is done reading this tile\n" ""
  DevLinearCuda.ForwardVariantsMatchCpu)
mnistgan_negative_control(split_cols_off_by_one kernels/elementwise.cu
  "if (c < a) {" "if (c <= a) {"
  Ops/CudaOpCases.MatchCpu/concat_cols_split_cols)
mnistgan_negative_control(cublas_wrong_lda kernels/dev/linear_dev.cu
  "in, rows, out, &one, W, in, dZ," "in, rows, out, &one, W, out, dZ,"
  DevLinearCuda.CublasBackwardMatchesCpu)
mnistgan_negative_control(column_sum_drops_a_partial kernels/dev/linear_dev.cu
  "for (int y = 1; y < kColSumSlices; ++y)" "for (int y = 1; y < kColSumSlices - 1; ++y)"
  DevLinearCuda.CublasBackwardMatchesCpu)
mnistgan_negative_control(warp_sum_drops_a_partial kernels/elementwise.cu
  "for (int offset = 16; offset > 0; offset /= 2)" "for (int offset = 16; offset > 1; offset /= 2)"
  Ops/CudaOpCases.MatchCpu/count_nonfinite)
mnistgan_negative_control(tf32_kernel_body_compiled_out kernels/dev/linear_dev.cu
  "__CUDA_ARCH__ >= 800" "__CUDA_ARCH__ >= 1000"
  EmuCuda.Tf32WmmaKernelBodyRuns)
# Reads one row past X and W in the v2 tile loader (float4 and scalar); that row is never stored,
# so every result is still right: only ASan sees it.
mnistgan_negative_control(gemm_tile_load_reads_past_the_end kernels/dev/linear_dev.cu
  "v[p] = (r0 + r < R && k0 + k < K)" "v[p] = (r0 + r <= R && k0 + k < K)"
  DevLinearCuda.ForwardVariantsMatchCpu ASAN)

# The emulation's own helpers (tests/cuda_emu/check_kernels.cu), one capability each.
# A cross-block sum without its atomic: right in every serial order of the blocks, a race.
mnistgan_negative_control(cross_block_sum_without_atomic tests/cuda_emu/check_kernels.cu
  "atomicAdd(total, partial[0]);" "*total += partial[0];"
  EmuCuda.CrossBlockSumWithAtomic TSAN)
# The tree reads shared memory that other threads have not written yet: NaN (poisoned).
mnistgan_negative_control(shared_read_before_write tests/cuda_emu/check_kernels.cu
  "  __syncthreads();  // every value is in shared memory before the tree reads it\n" ""
  EmuCuda.CrossBlockSumWithAtomic)
# The host reads pinned memory that an asynchronous copy has not filled yet.
mnistgan_negative_control(async_copy_read_without_sync tests/cuda_emu/check_kernels.cu
  "  CUDA_CHECK(cudaStreamSynchronize(stream));  // the copy into pinned memory is asynchronous\n" ""
  EmuCuda.AsyncCopyToPinnedMemoryIsReadAfterASync)
mnistgan_negative_control(kernel_given_host_pointer tests/cuda_emu/check_kernels.cu
  "add_kernel)(y, scratch, n);" "add_kernel)(y, host_bias, n);"
  EmuCuda.HostBiasGoesThroughADeviceBuffer)
mnistgan_negative_control(kernel_given_freed_buffer tests/cuda_emu/check_kernels.cu
  "  MNISTGAN_LAUNCH((n + 255) / 256, 256, 0, stream, add_kernel)(y, scratch, n);\n"
  "  CUDA_CHECK(cudaFree(scratch));\n  MNISTGAN_LAUNCH((n + 255) / 256, 256, 0, stream, add_kernel)(y, scratch, n);\n"
  EmuCuda.HostBiasGoesThroughADeviceBuffer)

# The shipped linear kernel (kernels/linear.cu): its two tile barriers and the fixed-order
# reduction of the split-K slices. (The barrier between storing a slice's partial tile and
# taking its ticket orders this block's stores before another block's reads; the emulator runs
# one block at a time, so removing it changes nothing here: no control can fail for it.)
mnistgan_negative_control(linear_no_syncthreads_after_tile_load kernels/linear.cu
  "    __syncthreads();  // the tiles are complete\n" ""
  FusedLinearCuda.ForwardMatchesCpuForOneAndTwoModels)
mnistgan_negative_control(linear_no_syncthreads_before_tile_reuse kernels/linear.cu
  "    __syncthreads();  // every thread is done with the tiles before they are overwritten\n" ""
  FusedLinearCuda.BackwardMatchesCpuForOneAndTwoModels)
mnistgan_negative_control(linear_split_reduction_skips_a_slice kernels/linear.cu
  "for (int sl = 0; sl < P.split_k; ++sl)" "for (int sl = 1; sl < P.split_k; ++sl)"
  FusedLinearCuda.BackwardMatchesCpuForOneAndTwoModels)
# The slices summed in another fixed order (still repeatable): only the bitwise comparison
# with the in-order sum sees it.
mnistgan_negative_control(linear_split_reduction_reversed kernels/linear.cu
  "for (int sl = 0; sl < P.split_k; ++sl)" "for (int sl = P.split_k - 1; sl >= 0; --sl)"
  FusedLinearCuda.SplitKSumsTheSlicesInIndexOrder)
# The logit + BCE kernel (kernels/logit_bce.cu): the barrier between the logits and the loss,
# and the loss tree's level barrier.
mnistgan_negative_control(logit_bce_no_syncthreads_after_logits kernels/logit_bce.cu
  "  __syncthreads();  // the logits are written\n" ""
  LogitBceCuda.MatchesCpuForOneAndTwoModels)
mnistgan_negative_control(logit_bce_tree_no_level_barrier kernels/logit_bce.cu
  "      __syncthreads();  // this level of the tree is summed\n" ""
  LogitBceCuda.MatchesCpuForOneAndTwoModels)
# Adam's last-block step increment (kernels/adam.cu): a ticket count that never matches.
mnistgan_negative_control(adam_step_never_counted kernels/adam.cu
  "atomicAdd(&tickets[z], 1u) == gridDim.x - 1" "atomicAdd(&tickets[z], 1u) == gridDim.x"
  AdamFusedCuda.TwoModelsWithEmaAndSkipBitwiseEqualCpu)
# The barrier between every thread storing its part of a split-K partial tile and thread 0
# taking the tile's ticket: without it the last block may read a slice before another block's
# threads have stored it. Blocks run one at a time here, so no value shows it; TSan sees the
# unordered store and read.
mnistgan_negative_control(linear_split_ticket_before_stores kernels/linear.cu
  "    __syncthreads();  // every thread's part is stored\n" ""
  FusedLinearCuda.SplitKSumsTheSlicesInIndexOrder TSAN)
# The per-model scratch pair of the non-finite count (kernels/elementwise.cu), a cross-block
# sum with a last-block ticket per model: with one pair for all models the models' blocks mix
# their sums and tickets, and a model's count lands in another's.
mnistgan_negative_control(nonfinite_count_shared_scratch kernels/elementwise.cu
  "  x += z * x_stride, count += z * count_stride, scratch += 2 * z;\n"
  "  x += z * x_stride, count += z * count_stride;\n"
  ModelIndexCuda.NonfiniteCountsAndIncrementsPerModel)
# The lock-step Adam's own hyperparameters per model (kernels/adam.cu): every model on model
# 0's instead.
mnistgan_negative_control(adam_ignores_model_hyperparameters kernels/adam.cu
  "  if (hypers != nullptr) h = hypers[z];\n" "  if (hypers != nullptr) h = hypers[0];\n"
  ModelIndexCuda.AdamPerModelHyperparametersBitwiseEqualCpu)
