#pragma once
// Reader for the IDX files of (Fashion-)MNIST, gzip-compressed as Debian ships them.
#include <ATen/core/Tensor.h>

#include <string>

namespace fancy {
namespace data {

struct ImageSet {
  at::Tensor images;  // (N, 1, 28, 28) float32 in [0, 1]
  at::Tensor labels;  // (N) int64
};

// Loads `<dir>/<split>-images-idx3-ubyte.gz` and `<dir>/<split>-labels-idx1-ubyte.gz`,
// split = "train" or "t10k". Errors name the file and what is wrong with it.
ImageSet load_fashion_mnist(const std::string& dir, const std::string& split);

}  // namespace data
}  // namespace fancy
