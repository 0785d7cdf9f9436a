// libFuzzer harness for the ring file's open/validate path (native/src/ring.cpp, linked as is):
// each input is written to a ring file and opened with Ring::open, exactly as the addon does,
// then read through every accessor that trusts what open validated. Built with
// -fsanitize=fuzzer,address,undefined by scripts/fuzz-ring.sh; any sanitizer report, signal or
// exception other than RingError is a finding. Not part of the addon.
#include <dirent.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../src/ring.hpp"

namespace {

// Header field offsets (ring.cpp's struct Header); the checksum is FNV-1a 64 of [0, 296).
constexpr size_t CAPACITY_AT = 16, CHANNELS_AT = 20, TAG_LEN_AT = 28, TAG_AT = 32, CHECKSUM_AT = 296;

uint32_t u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

std::string workDir() {
  static std::string dir = [] {
    // tmpfs where there is one: every created ring is msync'ed, which on a disk costs a flush.
    std::string tmpl = access("/dev/shm", W_OK) == 0 ? "/dev/shm/icosfl-ring-fuzz-XXXXXX" : "/tmp/icosfl-ring-fuzz-XXXXXX";
    const char* d = mkdtemp(tmpl.data());
    if (!d) std::abort();
    return std::string(d);
  }();
  static const bool removedAtExit = std::atexit([] { rmdir(workDir().c_str()); }) == 0;
  (void)removedAtExit;
  return dir;
}

// The ring and whatever open moved aside (<path>.corrupt-<time>) go after every input.
void clearDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    unlink((dir + "/" + e->d_name).c_str());
  }
  closedir(d);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> file(data, data + size);
  // The layout asked for comes from the file's own header where it is plausible (small, so one
  // input stays fast), so mutations get past the layout check to the record checks.
  icosfl::RingLayout layout{16, 2, "fuzz"};
  if (size >= CHECKSUM_AT + 8) {
    const uint32_t cap = u32(&file[CAPACITY_AT]), ch = u32(&file[CHANNELS_AT]), tagLen = u32(&file[TAG_LEN_AT]);
    if (cap >= 1 && cap <= 4096 && (cap & (cap - 1)) == 0) layout.capacity = cap;
    if (ch >= 1 && ch <= 64) layout.channels = ch;
    if (tagLen <= 255) layout.schemaTag.assign(reinterpret_cast<const char*>(&file[TAG_AT]), tagLen);
    // An odd first checksum byte asks the harness to repair the checksum: otherwise almost every
    // mutation of the header would stop at the checksum and the fields behind it would go untested.
    if (file[CHECKSUM_AT] & 1) {
      const uint64_t sum = fnv1a(file.data(), CHECKSUM_AT);
      std::memcpy(&file[CHECKSUM_AT], &sum, 8);
    }
  }
  const std::string dir = workDir();
  const std::string path = dir + "/metrics.ring";
  clearDir(dir);
  if (size > 0) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(file.data(), 1, file.size(), f) != file.size()) std::abort();
    std::fclose(f);
  }
  try {
    icosfl::OpenInfo info;
    icosfl::Ring* ring = icosfl::Ring::open(path, layout, info);
    // Everything below reads the mapped records open() accepted.
    const uint64_t n = ring->size();
    std::vector<double> ts(n);
    std::vector<float> values(n * ring->channels());
    ring->copyLatest(n, ts.data(), values.data());
    const uint64_t inRange = ring->rangeCount(-std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity());
    std::vector<double> ts2(inRange);
    std::vector<float> values2(inRange * ring->channels());
    ring->copyRange(-std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity(), ts2.data(), values2.data());
    (void)ring->stats();
    icosfl::WindowPlan plan = ring->planWindows(2, 1, 1);
    std::vector<float> x(plan.starts.size() * 2 * ring->channels()), y(plan.starts.size() * ring->channels());
    ring->fillWindows(plan, 2, 1, x.data(), y.data());
    std::vector<float> row(ring->channels(), 1.0f);
    ring->push(1.0e12, row.data());
    (void)ring->stats();
    ring->close();
    delete ring;
  } catch (const icosfl::RingError&) {
    // A refusal: what the addon turns into an IcosflError.
  }
  clearDir(dir);
  return 0;
}
