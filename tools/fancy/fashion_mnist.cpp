#include "fashion_mnist.h"

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <zlib.h>

#include <cstdint>
#include <vector>

namespace fancy {
namespace data {
namespace {

std::vector<uint8_t> read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  TORCH_CHECK(f != nullptr, "fashion-mnist: cannot open ", path,
              " (install Debian's dataset-fashion-mnist or pass --data DIR)");
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.insert(out.end(), buf, buf + n);
  const bool error = n < 0;
  gzclose(f);
  TORCH_CHECK(!error, "fashion-mnist: ", path, " is not a readable gzip file");
  return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t(b[at]) << 24) | (uint32_t(b[at + 1]) << 16) | (uint32_t(b[at + 2]) << 8) | b[at + 3];
}

}  // namespace

ImageSet load_fashion_mnist(const std::string& dir, const std::string& split) {
  const std::string ipath = dir + "/" + split + "-images-idx3-ubyte.gz";
  const std::string lpath = dir + "/" + split + "-labels-idx1-ubyte.gz";
  auto img = read_gz(ipath);
  auto lab = read_gz(lpath);
  TORCH_CHECK(img.size() >= 16 && be32(img, 0) == 2051, "fashion-mnist: ", ipath,
              " is not an IDX image file (magic 2051)");
  TORCH_CHECK(lab.size() >= 8 && be32(lab, 0) == 2049, "fashion-mnist: ", lpath,
              " is not an IDX label file (magic 2049)");
  const int64_t n = be32(img, 4), rows = be32(img, 8), cols = be32(img, 12);
  TORCH_CHECK(img.size() == size_t(16 + n * rows * cols), "fashion-mnist: ", ipath, " holds ",
              img.size() - 16, " pixel bytes, expected ", n * rows * cols);
  TORCH_CHECK(int64_t(be32(lab, 4)) == n && lab.size() == size_t(8 + n), "fashion-mnist: ", lpath,
              " has ", be32(lab, 4), " labels for ", n, " images");
  ImageSet s;
  s.images = at::empty({n, 1, rows, cols}, at::kFloat);
  s.labels = at::empty({n}, at::kLong);
  float* ip = s.images.data_ptr<float>();
  for (int64_t i = 0; i < n * rows * cols; ++i) ip[i] = img[16 + i] / 255.0f;
  int64_t* lp = s.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(lab[8 + i] < 10, "fashion-mnist: ", lpath, " label ", i, " is ", int(lab[8 + i]),
                ", expected 0..9");
    lp[i] = lab[8 + i];
  }
  return s;
}

}  // namespace data
}  // namespace fancy
