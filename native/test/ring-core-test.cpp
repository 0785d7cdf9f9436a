// Tests the pure C++ ring without Node: g++ -std=c++17 -Inative/src native/test/ring-core-test.cpp
// native/src/ring.cpp native/src/sd-notify.cpp. Prints one "ok NAME" line per check and exits 1 on
// the first failure. Usage: ring-core-test <scratch directory>
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ring.hpp"

using icosfl::OpenInfo;
using icosfl::Ring;
using icosfl::RingError;
using icosfl::RingErrorKind;
using icosfl::RingLayout;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
      std::exit(1);                                                              \
    }                                                                            \
  } while (0)
#define CHECK_THROWS(expr, errkind)                 \
  do {                                              \
    bool thrown = false;                            \
    try {                                           \
      expr;                                         \
    } catch (const RingError& e) {                  \
      thrown = e.kind == (errkind);                 \
    }                                               \
    CHECK(thrown);                                  \
  } while (0)

static std::string dir;

static std::unique_ptr<Ring> openRing(const std::string& name, uint32_t cap, uint32_t ch, const std::string& tag = "",
                                      OpenInfo* out = nullptr) {
  OpenInfo info;
  RingLayout l;
  l.capacity = cap;
  l.channels = ch;
  l.schemaTag = tag;
  std::unique_ptr<Ring> r(Ring::open(dir + "/" + name, l, info));
  if (out) *out = info;
  return r;
}

static void wraparoundAndStats() {
  auto r = openRing("wrap.ring", 16, 2);
  std::vector<float> all;
  for (int i = 0; i < 53; i++) {
    float v[2] = {float(i), i % 7 == 0 ? NAN : float(1000 + i * 0.5)};
    r->push(1000.0 + i, v);
    all.push_back(v[0]);
    all.push_back(v[1]);
  }
  CHECK(r->size() == 16);
  std::vector<double> ts(16);
  std::vector<float> vals(32);
  r->copyLatest(16, ts.data(), vals.data());
  for (int i = 0; i < 16; i++) {
    CHECK(ts[i] == 1000.0 + 37 + i);
    CHECK(vals[i * 2] == float(37 + i));
  }
  // Stats against a rescan of the last 16 samples.
  auto s = r->stats();
  for (int c = 0; c < 2; c++) {
    double n = 0, sum = 0, mn = INFINITY, mx = -INFINITY;
    for (int i = 37; i < 53; i++) {
      float x = all[i * 2 + c];
      if (std::isnan(x)) continue;
      n++, sum += x, mn = std::fmin(mn, x), mx = std::fmax(mx, x);
    }
    double mean = sum / n, m2 = 0;
    for (int i = 37; i < 53; i++) {
      float x = all[i * 2 + c];
      if (!std::isnan(x)) m2 += (x - mean) * (x - mean);
    }
    CHECK(s.count[c] == n);
    CHECK(std::fabs(s.mean[c] - mean) < 1e-9 * std::fmax(1, std::fabs(mean)));
    CHECK(std::fabs(s.std[c] - std::sqrt(m2 / n)) < 1e-6);
    CHECK(s.min[c] == mn && s.max[c] == mx);
  }
  std::puts("ok wraparound and stats");
}

static void windowsSkipMissing() {
  auto r = openRing("win.ring", 64, 1);
  for (int i = 0; i < 20; i++) {
    float v = i == 10 ? INFINITY : float(i);
    r->push(i, &v);
  }
  // lookback 3, horizon 1, stride 2: candidates start at 0,2,...,16 (9); those covering 10 skip.
  auto plan = r->planWindows(3, 1, 2);
  CHECK(plan.starts.size() + plan.skipped == 9);
  CHECK(plan.skipped == 2);  // starts 8 and 10
  std::vector<float> x(plan.starts.size() * 3), y(plan.starts.size());
  r->fillWindows(plan, 3, 1, x.data(), y.data());
  for (size_t k = 0; k < plan.starts.size(); k++) {
    float s = float(plan.starts[k]);
    CHECK(x[k * 3] == s && x[k * 3 + 2] == s + 2 && y[k] == s + 3);
  }
  CHECK(r->planWindows(30, 1, 1).starts.empty());
  CHECK_THROWS(r->planWindows(0, 1, 1), RingErrorKind::Argument);
  std::puts("ok windows skip missing values");
}

static void persistenceAndLayout() {
  {
    auto r = openRing("persist.ring", 8, 3, "a,b,c");
    for (int i = 0; i < 11; i++) {
      double v[3] = {double(i), double(i) * 2, 1e300};  // beyond float range → missing
      r->push(i * 10.0, v);
    }
  }
  OpenInfo info;
  auto r = openRing("persist.ring", 8, 3, "a,b,c", &info);
  CHECK(!info.created && info.movedAsideTo.empty());
  CHECK(r->size() == 8);
  CHECK(r->stats().count[2] == 0);
  CHECK(r->rangeCount(30, 60) == 4);
  CHECK_THROWS(openRing("persist.ring", 8, 3, "a,b,c"), RingErrorKind::Locked);
  r.reset();
  CHECK_THROWS(openRing("persist.ring", 16, 3, "a,b,c"), RingErrorKind::LayoutMismatch);
  CHECK_THROWS(openRing("persist.ring", 8, 2, "a,b,c"), RingErrorKind::LayoutMismatch);
  CHECK_THROWS(openRing("persist.ring", 8, 3, "a,b,x"), RingErrorKind::LayoutMismatch);
  CHECK_THROWS(openRing("persist.ring", 6, 3, "a,b,c"), RingErrorKind::Argument);
  std::puts("ok persistence, lock and layout mismatch");
}

static void patchFile(const std::string& name, off_t offset, const void* bytes, size_t n) {
  int fd = ::open((dir + "/" + name).c_str(), O_RDWR);
  CHECK(fd >= 0);
  CHECK(pwrite(fd, bytes, n, offset) == ssize_t(n));
  ::close(fd);
}

static void corruptMovedAside() {
  openRing("corrupt.ring", 8, 1).reset();
  patchFile("corrupt.ring", 20, "\x07", 1);  // flips the channel count: checksum no longer matches
  OpenInfo info;
  auto r = openRing("corrupt.ring", 8, 1, "", &info);
  CHECK(info.created && !info.movedAsideTo.empty() && info.corruptReason == "header checksum mismatch");
  CHECK(access(info.movedAsideTo.c_str(), F_OK) == 0);
  CHECK(r->size() == 0);
  std::puts("ok corrupt header moved aside");
}

static void tornSlotDropped() {
  const uint32_t cap = 4;
  {
    auto r = openRing("torn.ring", cap, 1);
    for (int i = 0; i < 6; i++) {
      float v = float(i);
      r->push(i, &v);
    }
  }
  // Simulate kill -9 during push #6: slot 6 & 3 = 2 marked torn, write sequence still 6.
  const uint64_t torn = 6ull | (1ull << 63);
  patchFile("torn.ring", 4096 + cap * 8 + 2 * 8, &torn, 8);
  OpenInfo info;
  auto r = openRing("torn.ring", cap, 1, "", &info);
  CHECK(info.movedAsideTo.empty());
  CHECK(r->size() == 3);  // samples 3, 4, 5; sample 2 was being overwritten
  std::vector<double> ts(3);
  std::vector<float> v(3);
  r->copyLatest(3, ts.data(), v.data());
  CHECK(v[0] == 3 && v[2] == 5);
  CHECK(r->stats().count[0] == 3);
  float x = 6;
  r->push(6, &x);
  CHECK(r->size() == 4 && r->stats().mean[0] == 4.5);
  // A tag that disagrees anywhere else means foreign or damaged records: moved aside.
  r.reset();
  const uint64_t wrong = 99;
  patchFile("torn.ring", 4096 + cap * 8 + 0 * 8, &wrong, 8);
  auto r2 = openRing("torn.ring", cap, 1, "", &info);
  CHECK(!info.movedAsideTo.empty() && r2->size() == 0);
  std::puts("ok torn slot dropped, bad tag moved aside");
}

// Random pushes against a rescan: stats stay exact across many laps (no drift from eviction).
static void randomStatsManyLaps() {
  auto r = openRing("laps.ring", 128, 2);
  std::mt19937 rng(7);
  std::normal_distribution<float> big(1e9f, 1e3f);
  std::vector<float> hist;
  for (int i = 0; i < 5000; i++) {
    float v[2] = {big(rng), (rng() % 13 == 0) ? NAN : float(rng() % 100)};
    r->push(i, v);
    hist.insert(hist.end(), v, v + 2);
  }
  auto s = r->stats();
  for (int c = 0; c < 2; c++) {
    double n = 0, sum = 0;
    for (int i = 5000 - 128; i < 5000; i++)
      if (!std::isnan(hist[i * 2 + c])) n++, sum += hist[i * 2 + c];
    double mean = sum / n, m2 = 0;
    for (int i = 5000 - 128; i < 5000; i++)
      if (!std::isnan(hist[i * 2 + c])) m2 += (hist[i * 2 + c] - mean) * (hist[i * 2 + c] - mean);
    CHECK(s.count[c] == n);
    CHECK(std::fabs(s.mean[c] - mean) <= 1e-9 * std::fabs(mean) + 1e-9);
    CHECK(std::fabs(s.std[c] - std::sqrt(m2 / n)) <= 1e-6 * std::sqrt(m2 / n) + 1e-9);
  }
  std::puts("ok stats exact over many laps");
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: ring-core-test <scratch directory>\n");
    return 2;
  }
  dir = argv[1];
  wraparoundAndStats();
  windowsSkipMissing();
  persistenceAndLayout();
  corruptMovedAside();
  tornSlotDropped();
  randomStatsManyLaps();
  std::puts("all ok");
  return 0;
}
