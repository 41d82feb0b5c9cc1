#include "cli_util.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace fancy::cli {

void write_atomically(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << text;
    f.flush();
    if (!f) throw std::runtime_error(tmp.string() + ": cannot write (disk full or folder missing?)");
  }
  std::filesystem::rename(tmp, path);
}

std::filesystem::path share_file(const std::string& name) {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  buf[n > 0 ? n : 0] = '\0';
  return std::filesystem::path(buf).parent_path().parent_path() / "share" / "fancy" / name;
}

namespace {
std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
}  // namespace

bool run_python(const std::filesystem::path& script, const std::vector<std::string>& args) {
  if (!std::filesystem::exists(script)) return false;
  std::string cmd = "/usr/bin/python3 " + quoted(script.string());
  for (const auto& a : args) cmd += " " + quoted(a);
  return std::system(cmd.c_str()) == 0;
}

}  // namespace fancy::cli
