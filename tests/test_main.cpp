// Test entry point: fixed seed, two threads, quiet logging, then GoogleTest.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ewa/core/runtime.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ewa::init_logging("warn");
  ewa::set_num_threads(2);
  torch::manual_seed(0);
  return RUN_ALL_TESTS();
}
