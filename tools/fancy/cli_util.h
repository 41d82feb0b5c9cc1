// Small helpers shared by the CLI's subcommand programs (torch-free).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace fancy::cli {

// Writes `text` to `path` through a temporary file and a rename, so a reader never
// sees a half-written report.
void write_atomically(const std::filesystem::path& path, const std::string& text);

// <folder of this program>/../share/fancy/<name>: where the build and an install put
// the chart scripts.
std::filesystem::path share_file(const std::string& name);

// Runs `/usr/bin/python3 script args...`; returns false when the script is missing or
// fails (a missing chart is reported, never fatal).
bool run_python(const std::filesystem::path& script, const std::vector<std::string>& args);

}  // namespace fancy::cli
