// Include this instead of <catch2/catch.hpp> in tests: LibTorch's logging headers define a glog-style
// CHECK macro, which must not replace Catch2's. LibTorch comes first, then its CHECK is dropped.
#pragma once
#include <ATen/core/Tensor.h>
#undef CHECK
#include <catch2/catch.hpp>
