#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "proxy/runtime/cli.h"

using pgsidecar::proxy::CliOptions;
using pgsidecar::proxy::parse_cli;
using pgsidecar::proxy::usage_text;

namespace {

// argv as main() gets it: program name first, NUL-terminated strings, argv[argc] null.
struct Args {
  explicit Args(std::initializer_list<std::string> list) : storage{"pgsidecar"} {
    storage.insert(storage.end(), list);
    for (std::string& s : storage) pointers.push_back(s.data());
    pointers.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(pointers.size()) - 1; }
  char** argv() { return pointers.data(); }
  std::vector<std::string> storage;
  std::vector<char*> pointers;
};

CliOptions parse_ok(std::initializer_list<std::string> list) {
  Args args(list);
  CliOptions out;
  std::string error;
  CHECK(parse_cli(args.argc(), args.argv(), out, error));
  CHECK(error.empty());
  return out;
}

std::string parse_error(std::initializer_list<std::string> list) {
  Args args(list);
  CliOptions out;
  out.config_path = "untouched";
  std::string error;
  CHECK_FALSE(parse_cli(args.argc(), args.argv(), out, error));
  CHECK(out.config_path == "untouched");
  return error;
}

}  // namespace

TEST_CASE("the config file is given with --config FILE, --config=FILE or -c FILE") {
  CHECK(parse_ok({"--config", "/etc/pgsidecar.toml"}).config_path == "/etc/pgsidecar.toml");
  CHECK(parse_ok({"--config=/etc/pgsidecar.toml"}).config_path == "/etc/pgsidecar.toml");
  CHECK(parse_ok({"-c", "pgsidecar.toml"}).config_path == "pgsidecar.toml");
  CHECK(parse_ok({"--config=a=b.toml"}).config_path == "a=b.toml");
  CHECK(parse_ok({"-c", "-odd-name.toml"}).config_path == "-odd-name.toml");
  const CliOptions plain = parse_ok({"-c", "x.toml"});
  CHECK_FALSE(plain.check);
  CHECK_FALSE(plain.version);
  CHECK_FALSE(plain.help);
}

TEST_CASE("--check may come before or after --config") {
  const CliOptions a = parse_ok({"--check", "--config", "x.toml"});
  CHECK(a.check);
  CHECK(a.config_path == "x.toml");
  const CliOptions b = parse_ok({"-c", "x.toml", "--check"});
  CHECK(b.check);
  CHECK(b.config_path == "x.toml");
}

TEST_CASE("--help, -h and --version need no config file") {
  CHECK(parse_ok({"--help"}).help);
  CHECK(parse_ok({"-h"}).help);
  CHECK(parse_ok({"--version"}).version);
  const CliOptions both = parse_ok({"--version", "-c", "x.toml"});
  CHECK(both.version);
  CHECK(both.config_path == "x.toml");
}

TEST_CASE("bad command lines are refused with a one-line reason") {
  CHECK(parse_error({}) == "--config FILE is required (see --help)");
  CHECK(parse_error({"--check"}) == "--config FILE is required (see --help)");
  CHECK(parse_error({"--config"}) == "--config needs a file name");
  CHECK(parse_error({"-c"}) == "-c needs a file name");
  CHECK(parse_error({"--config="}) == "--config needs a file name");
  CHECK(parse_error({"-c", ""}) == "--config needs a file name");
  CHECK(parse_error({"-c", "a.toml", "--config=b.toml"}) == "--config given more than once");
  CHECK(parse_error({"--verbose"}) == "unknown option \"--verbose\" (see --help)");
  CHECK(parse_error({"-c", "a.toml", "-x"}) == "unknown option \"-x\" (see --help)");
  CHECK(parse_error({"--configfile", "a.toml"}) == "unknown option \"--configfile\" (see --help)");
  CHECK(parse_error({"--help", "--bogus"}) == "unknown option \"--bogus\" (see --help)");
  CHECK(parse_error({"a.toml"}).starts_with("unexpected argument \"a.toml\""));
  CHECK(parse_error({"-c", "a.toml", "extra"}).starts_with("unexpected argument \"extra\""));
  for (const std::string& e : {parse_error({}), parse_error({"--x"}), parse_error({"y"})})
    CHECK(e.find('\n') == std::string::npos);
}

TEST_CASE("an empty argv is handled") {
  CliOptions out;
  std::string error;
  char* argv[] = {nullptr};
  CHECK_FALSE(parse_cli(0, argv, out, error));
  CHECK(error == "--config FILE is required (see --help)");
}

TEST_CASE("the usage text names every option") {
  const std::string usage = usage_text();
  for (const char* option : {"--config FILE", "-c,", "--check", "--version", "--help", "-h,"}) {
    CAPTURE(option);
    CHECK(usage.find(option) != std::string::npos);
  }
  CHECK(usage.back() == '\n');
}
