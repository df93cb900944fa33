#include "services/metrics/process.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace lmgate::metrics {
namespace {

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// /proc/self/stat fields after the command (which may hold spaces and parentheses): field 3 is
// the state, so fields[i] below is field i + 3 of proc(5).
std::vector<std::string> StatFields() {
  const std::string stat = ReadFile("/proc/self/stat");
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return {};
  return absl::StrSplit(stat.substr(close + 1), ' ', absl::SkipEmpty());
}

// Seconds since the epoch at boot ("btime" of /proc/stat).
double BootTime() {
  std::istringstream in(ReadFile("/proc/stat"));
  std::string line;
  while (std::getline(in, line)) {
    double t = 0;
    if (line.rfind("btime ", 0) == 0 && absl::SimpleAtod(line.substr(6), &t)) return t;
  }
  return 0;
}

int OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // the directory stream's own fd
}

void Collect(Registry& r) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const std::vector<std::string> f = StatFields();
  // proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24 (pages).
  double utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
  if (f.size() > 21 && ticks > 0 && absl::SimpleAtod(f[11], &utime) &&
      absl::SimpleAtod(f[12], &stime) && absl::SimpleAtod(f[19], &start) &&
      absl::SimpleAtod(f[20], &vsize) && absl::SimpleAtod(f[21], &rss)) {
    r.CounterSet("process_cpu_seconds_total", {}, (utime + stime) / ticks);
    r.GaugeSet("process_virtual_memory_bytes", {}, vsize);
    r.GaugeSet("process_resident_memory_bytes", {}, rss * page);
    static const double boot = BootTime();
    if (boot > 0) r.GaugeSet("process_start_time_seconds", {}, boot + start / ticks);
  }
  if (const int fds = OpenFds(); fds >= 0) r.GaugeSet("process_open_fds", {}, fds);
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    r.GaugeSet("process_max_fds", {}, static_cast<double>(lim.rlim_cur));
  }
}

}  // namespace

void AddProcessMetrics(Registry* r) {
  r->Describe("process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds.");
  r->Describe("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  r->Describe("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  r->Describe("process_open_fds", "gauge", "Number of open file descriptors.");
  r->Describe("process_max_fds", "gauge", "Maximum number of open file descriptors.");
  r->Describe("process_start_time_seconds", "gauge",
              "Start time of the process since the Unix epoch in seconds.");
  r->AddCollector(Collect);
}

}  // namespace lmgate::metrics
