// `fancy`: the command-line front door. It links nothing but the C++ runtime and runs
// `fancy-<command>` from its own folder (as git does), so a command that needs no
// LibTorch never pays its start-up.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Command {
  const char* name;
  const char* summary;
};

const Command kCommands[] = {
    {"shootout", "train the same CNN on Fashion-MNIST once per pooling method; table, JSON, chart"},
    {"eval-keypoints", "COCO keypoint AP/AR (OKS) with pycocotools' exact numbers; breakdowns, JSON, chart"},
    {"g2p", "grapheme-to-phoneme on CMUdict with an attention encoder-decoder: train, eval (WER/PER), predict"},
    {"reverse", "JoeyNMT's reverse task with its tutorial configuration, scored with BLEU"},
    {"pose", "stacked hourglass pose estimation on synthetic people or COCO data: synth, train, eval (OKS AP), predict"},
    {"prune", "group lasso on conv filters, proximal steps and physical pruning of a Fashion-MNIST CNN"},
    {"bleu", "corpus BLEU as sacreBLEU computes it (13a/none/intl, exp/floor/add-k/none), with its signature"},
};

std::string self_dir() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  std::string path(buf);
  return path.substr(0, path.find_last_of('/'));
}

void usage(FILE* out) {
  std::fprintf(out,
               "fancy: pooling, regularization, keypoints, pose and seq2seq on LibTorch\n\n"
               "usage: fancy <command> [options]     (fancy <command> --help for its options)\n\n"
               "commands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-15s %s\n", c.name, c.summary);
}

// Debian's OpenBLAS (0.3.21) does not know recent Xeons (Sapphire/Emerald Rapids) and
// falls back to its Prescott (SSE3) kernels: sgemm 5-6x slower, and GEMM is most of an
// LSTM's time. OpenBLAS reads OPENBLAS_CORETYPE when it loads, so the front door names
// the kernel family the CPU can run before starting the command; a value the user set
// is left alone.
void use_fast_blas_kernels() {
  if (std::getenv("OPENBLAS_CORETYPE")) return;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("fancy 0.1.0\n");
    return 0;
  }
  bool known = false;
  for (const auto& c : kCommands) known |= !std::strcmp(argv[1], c.name);
  if (!known) {
    std::fprintf(stderr, "fancy: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
  }
  // Large buffers (parsed JSON, tensors) cost one page fault per 4 KiB page, and page
  // faults are slow on virtual machines; glibc's malloc can ask for transparent huge
  // pages instead (a tunable read at start-up, so it is set here for the command).
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (!tunables) setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1", 1);
  else if (!std::strstr(tunables, "glibc.malloc.hugetlb"))
    setenv("GLIBC_TUNABLES", (std::string(tunables) + ":glibc.malloc.hugetlb=1").c_str(), 1);
  use_fast_blas_kernels();
  const std::string program = self_dir() + "/fancy-" + argv[1];
  std::vector<char*> args;
  args.push_back(const_cast<char*>(program.c_str()));
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  execv(program.c_str(), args.data());
  std::fprintf(stderr, "fancy: cannot run %s: %s\n", program.c_str(), std::strerror(errno));
  return 127;
}
