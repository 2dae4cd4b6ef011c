// Runs Debian's `promtool check metrics` (package prometheus) on an exposition: the
// parser and linter Prometheus itself uses, so the format is checked by its owner.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#ifndef PGSIDECAR_PROMTOOL
#define PGSIDECAR_PROMTOOL "promtool"
#endif

namespace pgsidecar::test {

struct PromtoolResult {
  int exit_code = -1;  // -1: promtool could not be run
  std::string output;  // its stdout and stderr, for the failure message
};

inline PromtoolResult promtool_check_metrics(const std::string& exposition) {
  char path[] = "/tmp/pgsidecar-metrics-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return {};
  close(fd);
  std::ofstream(path, std::ios::binary) << exposition;

  PromtoolResult result;
  const std::string command = std::string(PGSIDECAR_PROMTOOL) + " check metrics < " + path + " 2>&1";
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) result.output.append(buf, n);
    const int status = pclose(p);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::filesystem::remove(path);
  return result;
}

}  // namespace pgsidecar::test
