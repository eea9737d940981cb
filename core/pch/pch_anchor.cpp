// Compiles the LibTorch precompiled header once; other targets reuse it.
#include <torch/torch.h>
