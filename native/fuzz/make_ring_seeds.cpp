// Writes the seed corpus for ring_open_fuzz: valid ring files of several layouts and fill states
// (empty, partly filled, full, wrapped, with missing values), made by the real Ring code.
// Usage: make_ring_seeds DIR
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "../src/ring.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 64;
  }
  const std::string dir = argv[1];
  struct Seed {
    uint32_t capacity, channels;
    const char* tag;
    uint32_t pushes;
  };
  const Seed seeds[] = {{1, 1, "", 0}, {1, 1, "a", 3}, {2, 3, "cpu,mem,load", 1}, {16, 2, "fuzz", 0}, {16, 2, "fuzz", 7},
                        {16, 2, "fuzz", 16}, {16, 2, "fuzz", 40}, {64, 1, "x", 100}, {128, 3, "three", 129}};
  int written = 0;
  for (const Seed& s : seeds) {
    const std::string path = dir + "/seed-" + std::to_string(s.capacity) + "x" + std::to_string(s.channels) + "-" + std::to_string(s.pushes) + ".ring";
    std::remove(path.c_str());
    icosfl::OpenInfo info;
    icosfl::Ring* ring = icosfl::Ring::open(path, {s.capacity, s.channels, s.tag}, info);
    std::vector<float> row(s.channels);
    for (uint32_t i = 0; i < s.pushes; i++) {
      for (uint32_t c = 0; c < s.channels; c++) row[c] = (i % 5 == 3 && c == 0) ? NAN : float(i * 10 + c);
      ring->push(1.7e12 + i * 1000.0, row.data());
    }
    ring->close();
    delete ring;
    written++;
  }
  std::printf("%d seeds in %s\n", written, dir.c_str());
  return 0;
}
