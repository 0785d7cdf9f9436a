// The metric ring: a fixed-capacity, multi-channel sliding window of timestamped samples in a
// memory-mapped file. Pure C++17 + POSIX, no Node headers, so native/test/ring-core-test.cpp
// tests it with plain g++ (test/unit/ring/ring-core-cpp.test.ts runs that in `npm test`).
//
// File layout (all little-endian, native alignment; see docs in native/README.md):
//   [0, 4096)                 header: magic, format version, capacity, channels, dtype, schema tag,
//                             creation time, checksum (FNV-1a 64 of the bytes before it); the write
//                             sequence lives at offset 512, outside the checksum because it changes
//                             on every push (its consistency is checked against the record tags).
//   timestamps  f64[capacity] sample time in ms since the epoch
//   tags        u64[capacity] the sequence number written into each slot (torn/foreign data check)
//   values      f32[capacity × channels] row-major; NaN marks a missing value
// Slot of sequence s is s & (capacity − 1): capacity is a power of two.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace icosfl {

// Error kinds map 1:1 to IcosflError codes on the JS side (common/errors.ts).
enum class RingErrorKind { LayoutMismatch, Locked, Io, Argument, NoSpace };

class RingError : public std::runtime_error {
 public:
  RingError(RingErrorKind kind, const std::string& message, int errnum = 0) : std::runtime_error(message), kind(kind), errnum(errnum) {}
  const RingErrorKind kind;
  const int errnum;          // the errno behind an Io or NoSpace error, 0 if none
  uint64_t neededBytes = 0;  // NoSpace: bytes the ring file still had to reserve
  uint64_t freeBytes = 0;    // NoSpace: bytes free for this user on the file's filesystem
  const char* code() const;  // "RING_LAYOUT_MISMATCH", "RING_LOCKED", "RING_IO", "RANGE", "RING_NO_SPACE"
};

struct RingLayout {
  uint32_t capacity = 0;  // must already be a power of two (the TS wrapper rounds up)
  uint32_t channels = 0;
  std::string schemaTag;  // at most MAX_SCHEMA_TAG bytes
};

struct OpenInfo {
  bool created = false;         // a new file was initialised
  std::string movedAsideTo;     // non-empty when a corrupt file was moved aside
  std::string corruptReason;    // why it was judged corrupt
  uint64_t reservedBytes = 0;   // blocks allocated at open (new file, or a sparse existing one)
};

// What a ring file's header says, read without locking or mapping (Ring::inspect).
struct RingHeaderInfo {
  bool valid = false;       // magic, checksum and field ranges all good
  std::string reason;       // why not, when !valid
  uint32_t version = 0, capacity = 0, channels = 0, dtype = 0;
  std::string schemaTag;
  uint64_t writeSequence = 0;
  uint64_t fileBytes = 0, allocatedBytes = 0;
};

struct ChannelStats {
  std::vector<double> count, mean, std, min, max;  // population std; NaN where count is 0
};

struct WindowPlan {
  std::vector<uint64_t> starts;  // offsets (0 = oldest sample) of the kept windows, oldest first
  uint64_t skipped = 0;          // candidate windows dropped because they hold a missing value
};

class Ring {
 public:
  static constexpr uint32_t FORMAT_VERSION = 1;
  static constexpr uint32_t DTYPE_F64_TIME_F32_VALUES = 1;
  static constexpr uint32_t HEADER_BYTES = 4096;
  static constexpr uint32_t MAX_CAPACITY = 1u << 26;
  static constexpr uint32_t MAX_CHANNELS = 4096;
  static constexpr size_t MAX_SCHEMA_TAG = 255;

  // Opens or creates `path`, locks it (flock, exclusive, non-blocking), reserves every block of
  // it (posix_fallocate: a store into a hole of a MAP_SHARED mapping on a full filesystem is a
  // SIGBUS, not an error) and maps it. A corrupt file is renamed to `<path>.corrupt`, replacing
  // an earlier one, and a fresh ring is created (see OpenInfo).
  // Throws RingError: LayoutMismatch, Locked, Io, Argument, NoSpace (the file is left as it was;
  // a file this call created is removed).
  static Ring* open(const std::string& path, const RingLayout& layout, OpenInfo& info);
  // Reads the header of `path` (no lock, no mapping). Throws RingError Io if it cannot be read.
  static RingHeaderInfo inspect(const std::string& path);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Unmaps (after msync) and unlocks. Idempotent; the destructor calls it.
  void close();
  bool isOpen() const { return base_ != nullptr; }

  // Stores one sample. Non-finite values (and doubles beyond float range) become NaN = missing.
  // The header's write sequence is bumped last, so a sample is either fully in or not at all.
  void push(double timestampMs, const float* values);
  void push(double timestampMs, const double* values);
  void pushBatch(const double* timestampsMs, const float* values, size_t n);

  uint32_t capacity() const { return capacity_; }
  uint32_t channels() const { return channels_; }
  uint64_t size() const;
  uint64_t writeSequence() const;

  // Copies the newest min(n, size) samples, oldest first, into caller-owned buffers sized for
  // the returned count (call with the count first: latestCount). Returns samples written.
  uint64_t latestCount(uint64_t n) const { return n < size() ? n : size(); }
  void copyLatest(uint64_t n, double* timestamps, float* values) const;

  // Samples with fromMs <= timestamp <= toMs, oldest first. Linear scan: pushes need not be in
  // timestamp order (a wall clock may step back), so no binary search is assumed.
  uint64_t rangeCount(double fromMs, double toMs) const;
  void copyRange(double fromMs, double toMs, double* timestamps, float* values) const;

  ChannelStats stats() const;

  // Windows of lookback + horizon consecutive samples, starting at the oldest sample and every
  // `stride` samples after; a window is kept only if all its values are finite.
  WindowPlan planWindows(uint32_t lookback, uint32_t horizon, uint32_t stride) const;
  // Fills x [n × lookback × channels] and y [n × horizon × channels] for the plan's windows.
  void fillWindows(const WindowPlan& plan, uint32_t lookback, uint32_t horizon, float* x, float* y) const;

 private:
  Ring() = default;
  struct Block;  // per-block, per-channel running stats (see ring.cpp)

  void mapFile(int fd, size_t bytes);
  void unmapKeepFd();  // open() failed: drop the mapping, the caller closes the fd
  void catchUpStats() const;
  void rebuildStats() const;
  void resetBlock(uint64_t block) const;
  void accumulate(uint64_t slot, const float* row) const;
  template <typename T>
  void storeRow(double timestampMs, const T* __restrict values);
  // Copies `rows` consecutive samples starting `offset` samples after the oldest.
  void copyRows(uint64_t offset, uint64_t rows, float* dst) const;
  void copyTimestamps(uint64_t offset, uint64_t rows, double* dst) const;
  uint64_t oldestSequence() const { return writeSequence() - size(); }

  int fd_ = -1;
  uint8_t* base_ = nullptr;
  size_t mappedBytes_ = 0;
  uint32_t capacity_ = 0;
  uint32_t channels_ = 0;
  uint64_t mask_ = 0;
  uint64_t* writeSeq_ = nullptr;
  uint64_t firstSeq_ = 0;  // oldest readable sequence when a torn slot was dropped at open
  double* timestamps_ = nullptr;
  uint64_t* tags_ = nullptr;
  float* values_ = nullptr;
  uint32_t blockShift_ = 0;
  // Stats caches, updated by the const stats(): (capacity >> blockShift_) × channels blocks, and
  // the sequence up to which samples have been folded into them.
  mutable std::vector<Block> blocks_;
  mutable uint64_t aggregatedSeq_ = 0;
};

// File size for a layout: header + capacity × (8 + 8 + 4 × channels).
size_t ringFileBytes(uint32_t capacity, uint32_t channels);

}  // namespace icosfl
