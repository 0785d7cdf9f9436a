#include "ring.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>

namespace icosfl {

namespace {

constexpr char MAGIC[8] = {'I', 'C', 'O', 'S', 'R', 'I', 'N', 'G'};
constexpr size_t WRITE_SEQ_OFFSET = 512;
// A slot whose tag carries this bit is being overwritten (set before the row is touched).
constexpr uint64_t TORN_BIT = 1ull << 63;
// Stats are kept per block of this many slots. A block's sums restart when writing reaches its
// first slot again, so eviction never subtracts (no float drift), and stats() merges
// capacity / 64 blocks plus at most 63 older slots of the block being overwritten, instead of
// rescanning the window. Samples are folded in lazily, each exactly once, by the next stats()
// call (catchUpStats), which keeps push down to a few stores; if more than a capacity's worth
// of pushes went by unread, the window is folded in afresh (amortised O(channels) per push).
constexpr uint32_t STATS_BLOCK = 64;
constexpr float MISSING = std::numeric_limits<float>::quiet_NaN();

// The immutable part of the header, covered by the checksum. The write sequence is elsewhere.
struct Header {
  char magic[8];
  uint32_t version;
  uint32_t headerBytes;
  uint32_t capacity;
  uint32_t channels;
  uint32_t dtype;
  uint32_t schemaTagLen;
  char schemaTag[256];
  int64_t createdMs;
  uint64_t checksum;  // FNV-1a 64 of the bytes before this field
};
static_assert(sizeof(Header) <= WRITE_SEQ_OFFSET, "header overlaps the write sequence");

uint64_t fnv1a(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

uint64_t headerChecksum(const Header& h) { return fnv1a(&h, offsetof(Header, checksum)); }

std::string errnoText(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// Missing values are NaN in the file; Inf and doubles beyond float range are missing too.
// Bit test instead of std::isfinite so the per-row loop vectorises.
inline float canonical(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  return (bits & 0x7f800000u) == 0x7f800000u ? MISSING : v;
}
inline float canonical(double v) { return canonical(static_cast<float>(v)); }

// Bit test instead of std::isfinite so the row check vectorises.
inline bool rowFinite(const float* row, uint32_t channels) {
  uint32_t bad = 0;
  for (uint32_t c = 0; c < channels; c++) {
    uint32_t bits;
    std::memcpy(&bits, row + c, 4);
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

struct Corrupt {
  std::string reason;
};

// Bytes free for an unprivileged user on fd's filesystem (root may also use the reserve, so this
// errs on the side of refusing); UINT64_MAX when the filesystem does not say.
uint64_t freeBytesOf(int fd) {
  struct statvfs v {};
  if (fstatvfs(fd, &v) != 0) return std::numeric_limits<uint64_t>::max();
  return uint64_t(v.f_bavail) * uint64_t(v.f_frsize);
}

RingError noSpace(const std::string& path, size_t bytes, uint64_t missing, uint64_t free, int e) {
  RingError err(RingErrorKind::NoSpace,
                "cannot reserve the " + std::to_string(bytes) + " bytes of ring file " + path + ": " + std::strerror(e) + " (" +
                    std::to_string(missing) + " bytes still to allocate, " + std::to_string(free) + " bytes free on its filesystem)",
                e);
  err.neededBytes = missing;
  err.freeBytes = free;
  return err;
}

// Allocates every block of [0, bytes) (and sizes the file to it), so that no later store into the
// mapping can meet a full disk. Refuses up front when the free space cannot hold what is missing,
// rather than leaving a half-allocated file behind.
void reserve(int fd, const std::string& path, size_t bytes, uint64_t missing) {
  const uint64_t free = freeBytesOf(fd);
  if (free < missing) throw noSpace(path, bytes, missing, free, ENOSPC);
  const int e = posix_fallocate(fd, 0, off_t(bytes));
  if (e == 0) return;
  if (e == ENOSPC || e == EDQUOT) throw noSpace(path, bytes, missing, freeBytesOf(fd), e);
  throw RingError(RingErrorKind::Io, "cannot reserve the " + std::to_string(bytes) + " bytes of ring file " + path + ": " + std::strerror(e), e);
}

uint64_t allocatedBytes(const struct stat& st) { return uint64_t(st.st_blocks) * 512; }

}  // namespace

// Per block and channel: sums of (x − x0), where x0 is the block's first value. Shifting by a
// member of the block bounds the cancellation in s2 − s1²/n by the block's own spread (bytes/s
// around 1e9 with a spread of 1e3 stay exact to ~1e-9), and a push costs adds and multiplies
// only, no division (Welford's update divides once per value).
struct Ring::Block {
  double s1 = 0, s2 = 0;
  float x0 = 0, min = 0, max = 0;
  uint32_t count = 0;
};

namespace {
// (count, mean, M2, min, max), merged pairwise (Chan et al.) when stats() combines blocks.
struct Moments {
  double count = 0, mean = 0, m2 = 0;
  float min = 0, max = 0;
  void merge(double n, double m, double q, float lo, float hi) {
    if (n == 0) return;
    if (count == 0) {
      count = n, mean = m, m2 = q, min = lo, max = hi;
      return;
    }
    const double total = count + n, d = m - mean;
    mean += d * n / total;
    m2 += q + d * d * count * n / total;
    count = total;
    if (lo < min) min = lo;
    if (hi > max) max = hi;
  }
};
}  // namespace

const char* RingError::code() const {
  switch (kind) {
    case RingErrorKind::LayoutMismatch: return "RING_LAYOUT_MISMATCH";
    case RingErrorKind::Locked: return "RING_LOCKED";
    case RingErrorKind::Io: return "RING_IO";
    case RingErrorKind::Argument: return "RANGE";
    case RingErrorKind::NoSpace: return "RING_NO_SPACE";
  }
  return "RING_IO";
}

size_t ringFileBytes(uint32_t capacity, uint32_t channels) {
  return Ring::HEADER_BYTES + size_t(capacity) * (8 + 8 + 4 * size_t(channels));
}

Ring* Ring::open(const std::string& path, const RingLayout& layout, OpenInfo& info) {
  const uint32_t cap = layout.capacity;
  if (cap == 0 || (cap & (cap - 1)) != 0 || cap > MAX_CAPACITY)
    throw RingError(RingErrorKind::Argument, "capacity must be a power of two in [1, 2^26], got " + std::to_string(cap));
  if (layout.channels == 0 || layout.channels > MAX_CHANNELS)
    throw RingError(RingErrorKind::Argument, "channels must be in [1, 4096], got " + std::to_string(layout.channels));
  if (layout.schemaTag.size() > MAX_SCHEMA_TAG)
    throw RingError(RingErrorKind::Argument, "schemaTag is longer than 255 bytes");
  const size_t bytes = ringFileBytes(cap, layout.channels);

  // Two tries: if another process re-creates the file between our rename and create, start over.
  for (int attempt = 0; attempt < 2; attempt++) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) throw RingError(RingErrorKind::Io, errnoText("cannot open ring file", path));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;
      ::close(fd);
      if (e == EWOULDBLOCK) throw RingError(RingErrorKind::Locked, "ring file " + path + " is locked by another process or handle");
      errno = e;
      throw RingError(RingErrorKind::Io, errnoText("cannot lock ring file", path));
    }
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      ::close(fd);
      throw RingError(RingErrorKind::Io, errnoText("cannot stat ring file", path));
    }

    std::unique_ptr<Ring> ring(new Ring());
    ring->capacity_ = cap;
    ring->channels_ = layout.channels;
    ring->mask_ = cap - 1;
    try {
      if (st.st_size == 0) {
        // Fresh file: reserve (and size) it, then write the header with the magic last so that a
        // crash in between leaves a file that fails the magic check (moved aside next time),
        // never a half-initialised ring that passes. A file that cannot be reserved is removed.
        try {
          reserve(fd, path, bytes, bytes);
        } catch (const RingError&) {
          if (ftruncate(fd, 0) == 0) unlink(path.c_str());
          throw;
        }
        info.reservedBytes = bytes;
        ring->mapFile(fd, bytes);
        Header h{};
        h.version = FORMAT_VERSION;
        h.headerBytes = HEADER_BYTES;
        h.capacity = cap;
        h.channels = layout.channels;
        h.dtype = DTYPE_F64_TIME_F32_VALUES;
        h.schemaTagLen = uint32_t(layout.schemaTag.size());
        std::memcpy(h.schemaTag, layout.schemaTag.data(), layout.schemaTag.size());
        h.createdMs = int64_t(std::time(nullptr)) * 1000;
        std::memcpy(h.magic, MAGIC, sizeof MAGIC);
        h.checksum = headerChecksum(h);
        std::memcpy(ring->base_ + sizeof MAGIC, reinterpret_cast<const uint8_t*>(&h) + sizeof MAGIC, sizeof h - sizeof MAGIC);
        *ring->writeSeq_ = 0;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        std::memcpy(ring->base_, MAGIC, sizeof MAGIC);
        msync(ring->base_, HEADER_BYTES, MS_SYNC);
        info.created = true;
        ring->rebuildStats();
        return ring.release();
      }

      // Existing file: check the header before mapping anything.
      Header h{};
      if (st.st_size < off_t(HEADER_BYTES)) throw Corrupt{"file is shorter than its header (" + std::to_string(st.st_size) + " bytes)"};
      if (pread(fd, &h, sizeof h, 0) != ssize_t(sizeof h)) throw RingError(RingErrorKind::Io, errnoText("cannot read ring header", path));
      if (std::memcmp(h.magic, MAGIC, sizeof MAGIC) != 0) throw Corrupt{"bad magic"};
      if (h.checksum != headerChecksum(h)) throw Corrupt{"header checksum mismatch"};
      if (h.version != FORMAT_VERSION)
        throw RingError(RingErrorKind::LayoutMismatch, "ring file " + path + " has format version " + std::to_string(h.version) +
                                                           "; this build reads version " + std::to_string(FORMAT_VERSION));
      if (h.headerBytes != HEADER_BYTES || h.capacity == 0 || (h.capacity & (h.capacity - 1)) != 0 ||
          h.channels == 0 || h.schemaTagLen > MAX_SCHEMA_TAG)
        throw Corrupt{"header fields out of range"};
      std::string fileTag(h.schemaTag, h.schemaTagLen);
      if (h.capacity != cap || h.channels != layout.channels || h.dtype != DTYPE_F64_TIME_F32_VALUES || fileTag != layout.schemaTag)
        throw RingError(RingErrorKind::LayoutMismatch,
                        "ring file " + path + " has capacity " + std::to_string(h.capacity) + ", channels " +
                            std::to_string(h.channels) + ", dtype " + std::to_string(h.dtype) + ", schemaTag \"" + fileTag +
                            "\"; asked for capacity " + std::to_string(cap) + ", channels " + std::to_string(layout.channels) +
                            ", dtype " + std::to_string(DTYPE_F64_TIME_F32_VALUES) + ", schemaTag \"" + layout.schemaTag + "\"");
      if (size_t(st.st_size) != bytes)
        throw Corrupt{"file is " + std::to_string(st.st_size) + " bytes, layout needs " + std::to_string(bytes)};
      // A file written before reservation existed (or copied sparse) still has holes: fill them
      // before mapping, or refuse to open it (left as it is) when the disk cannot hold them.
      if (allocatedBytes(st) < bytes) {
        const uint64_t missing = bytes - allocatedBytes(st);
        reserve(fd, path, bytes, missing);
        info.reservedBytes = missing;
      }
      ring->mapFile(fd, bytes);

      // Records: every sample in the window must carry its own sequence number. The one slot
      // a killed push may have been overwriting (the oldest, when full) is dropped, not judged.
      const uint64_t w = *ring->writeSeq_;
      if (w >= (1ull << 62)) throw Corrupt{"write sequence out of range"};
      uint64_t first = w >= cap ? w - cap : 0;
      if (w >= cap) {
        uint64_t t = ring->tags_[w & ring->mask_];
        if (t == (w | TORN_BIT) || t == w) first++;
      }
      ring->firstSeq_ = first;
      for (uint64_t s = first; s < w; s++) {
        uint64_t slot = s & ring->mask_;
        if (ring->tags_[slot] != s)
          throw Corrupt{"record tag at slot " + std::to_string(slot) + " does not match write sequence " + std::to_string(w)};
        if (!std::isfinite(ring->timestamps_[slot])) throw Corrupt{"non-finite timestamp at slot " + std::to_string(slot)};
      }
      ring->rebuildStats();
      return ring.release();
    } catch (const Corrupt& c) {
      // Move the bad file aside while still holding its lock, so no one else reads it meanwhile.
      ring->unmapKeepFd();
      ring.reset();
      // One backup, replacing the previous one: a disk that keeps corrupting files must not fill up with them.
      std::string aside = path + ".corrupt";
      if (rename(path.c_str(), aside.c_str()) != 0) {
        ::close(fd);
        throw RingError(RingErrorKind::Io, errnoText("cannot move corrupt ring file aside:", path) + " (" + c.reason + ")");
      }
      ::close(fd);
      info.movedAsideTo = aside;
      info.corruptReason = c.reason;
      continue;
    } catch (...) {
      ring->unmapKeepFd();
      ::close(fd);
      throw;
    }
  }
  throw RingError(RingErrorKind::Io, "ring file " + path + " kept changing while it was opened");
}

RingHeaderInfo Ring::inspect(const std::string& path) {
  RingHeaderInfo out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw RingError(RingErrorKind::Io, errnoText("cannot open ring file", path), errno);
  struct stat st {};
  Header h{};
  uint64_t seq = 0;
  const bool statted = fstat(fd, &st) == 0;
  const int statErr = errno;
  const ssize_t got = statted && st.st_size >= off_t(HEADER_BYTES) ? pread(fd, &h, sizeof h, 0) : 0;
  const ssize_t gotSeq = got == ssize_t(sizeof h) ? pread(fd, &seq, sizeof seq, WRITE_SEQ_OFFSET) : 0;
  const int readErr = errno;
  ::close(fd);
  if (!statted) {
    errno = statErr;
    throw RingError(RingErrorKind::Io, errnoText("cannot stat ring file", path), statErr);
  }
  out.fileBytes = uint64_t(st.st_size);
  out.allocatedBytes = allocatedBytes(st);
  if (st.st_size < off_t(HEADER_BYTES)) {
    out.reason = "file is shorter than its header (" + std::to_string(st.st_size) + " bytes)";
    return out;
  }
  if (got != ssize_t(sizeof h) || gotSeq != ssize_t(sizeof seq)) {
    errno = readErr;
    throw RingError(RingErrorKind::Io, errnoText("cannot read ring header", path), readErr);
  }
  if (std::memcmp(h.magic, MAGIC, sizeof MAGIC) != 0) out.reason = "bad magic";
  else if (h.checksum != headerChecksum(h)) out.reason = "header checksum mismatch";
  else if (h.headerBytes != HEADER_BYTES || h.capacity == 0 || (h.capacity & (h.capacity - 1)) != 0 || h.channels == 0 ||
           h.schemaTagLen > MAX_SCHEMA_TAG)
    out.reason = "header fields out of range";
  if (!out.reason.empty()) return out;
  out.valid = true;
  out.version = h.version;
  out.capacity = h.capacity;
  out.channels = h.channels;
  out.dtype = h.dtype;
  out.schemaTag.assign(h.schemaTag, h.schemaTagLen);
  out.writeSequence = seq;
  return out;
}

void Ring::mapFile(int fd, size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw RingError(RingErrorKind::Io, std::string("cannot map ring file: ") + std::strerror(errno));
  fd_ = fd;
  base_ = static_cast<uint8_t*>(p);
  mappedBytes_ = bytes;
  writeSeq_ = reinterpret_cast<uint64_t*>(base_ + WRITE_SEQ_OFFSET);
  timestamps_ = reinterpret_cast<double*>(base_ + HEADER_BYTES);
  tags_ = reinterpret_cast<uint64_t*>(base_ + HEADER_BYTES + size_t(capacity_) * 8);
  values_ = reinterpret_cast<float*>(base_ + HEADER_BYTES + size_t(capacity_) * 16);
  uint32_t block = capacity_ < STATS_BLOCK ? capacity_ : STATS_BLOCK;
  blockShift_ = 0;
  while ((1u << blockShift_) < block) blockShift_++;
  blocks_.assign(size_t(capacity_ >> blockShift_) * channels_, Block{});
}

Ring::~Ring() { close(); }

void Ring::unmapKeepFd() {
  if (base_) munmap(base_, mappedBytes_);
  base_ = nullptr;
  fd_ = -1;
}

void Ring::close() {
  if (base_) {
    // Not needed for kill -9 (the page cache has every store); this covers a power cut after a
    // clean shutdown.
    msync(base_, mappedBytes_, MS_SYNC);
    munmap(base_, mappedBytes_);
    base_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);  // releases the flock
    fd_ = -1;
  }
}

uint64_t Ring::writeSequence() const { return *writeSeq_; }

uint64_t Ring::size() const {
  uint64_t w = *writeSeq_;
  uint64_t first = w >= capacity_ ? w - capacity_ : 0;
  if (firstSeq_ > first) first = firstSeq_;
  return w - first;
}

void Ring::resetBlock(uint64_t block) const {
  Block* b = &blocks_[block * channels_];
  for (uint32_t c = 0; c < channels_; c++) b[c] = Block{};
}

void Ring::accumulate(uint64_t slot, const float* row) const {
  Block* b = &blocks_[(slot >> blockShift_) * channels_];
  for (uint32_t c = 0; c < channels_; c++) {
    const float x = row[c];
    if (x != x) continue;
    Block& k = b[c];
    if (k.count == 0) k.x0 = k.min = k.max = x;
    k.min = x < k.min ? x : k.min;
    k.max = x > k.max ? x : k.max;
    const double d = double(x) - double(k.x0);
    k.s1 += d;
    k.s2 += d * d;
    k.count++;
  }
}

void Ring::catchUpStats() const {
  const uint64_t w = *writeSeq_;
  if (aggregatedSeq_ < w - size()) return rebuildStats();  // lapped: the missed samples are gone
  for (uint64_t s = aggregatedSeq_; s < w; s++) {
    const uint64_t slot = s & mask_;
    if ((slot & ((1ull << blockShift_) - 1)) == 0) resetBlock(slot >> blockShift_);
    accumulate(slot, values_ + slot * channels_);
  }
  aggregatedSeq_ = w;
}

void Ring::rebuildStats() const {
  for (auto& b : blocks_) b = Block{};
  const uint64_t w = *writeSeq_;
  const uint64_t next = w & mask_;
  const uint64_t blockMask = (1ull << blockShift_) - 1;
  const bool midBlock = (next & blockMask) != 0;
  const uint64_t first = w - size();
  // Same state a live ring would have: the block being overwritten aggregates only the samples
  // written into it this lap (slots before `next`); its older slots are merged in by stats().
  for (uint64_t s = first; s < w; s++) {
    uint64_t slot = s & mask_;
    if (midBlock && (slot >> blockShift_) == (next >> blockShift_) && slot >= next) continue;
    accumulate(slot, values_ + slot * channels_);
  }
  aggregatedSeq_ = w;
}

template <typename T>
void Ring::storeRow(double timestampMs, const T* __restrict values) {
  // Locals, because the signal fences below make the compiler reload anything read through `this`.
  uint64_t* const tags = tags_;
  uint64_t* const writeSeq = writeSeq_;
  const uint32_t channels = channels_;
  const uint64_t seq = *writeSeq;
  const uint64_t slot = seq & mask_;
  float* __restrict row = values_ + slot * channels;
  // Store order is what makes kill -9 safe: mark the slot torn, write it, tag it, then commit
  // by bumping the write sequence. A signal fence keeps the compiler from reordering the stores;
  // the CPU drains every retired store into the shared page cache even if the process dies.
  tags[slot] = seq | TORN_BIT;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  timestamps_[slot] = timestampMs;
  for (uint32_t c = 0; c < channels; c++) row[c] = canonical(values[c]);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  tags[slot] = seq;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  *writeSeq = seq + 1;
}

void Ring::push(double timestampMs, const float* values) { storeRow(timestampMs, values); }

void Ring::push(double timestampMs, const double* values) { storeRow(timestampMs, values); }

void Ring::pushBatch(const double* timestampsMs, const float* values, size_t n) {
  for (size_t i = 0; i < n; i++) storeRow(timestampsMs[i], values + i * channels_);
}

void Ring::copyRows(uint64_t offset, uint64_t rows, float* dst) const {
  const uint64_t slot = (oldestSequence() + offset) & mask_;
  const uint64_t firstPart = rows < capacity_ - slot ? rows : capacity_ - slot;
  std::memcpy(dst, values_ + slot * channels_, firstPart * channels_ * 4);
  if (rows > firstPart) std::memcpy(dst + firstPart * channels_, values_, (rows - firstPart) * channels_ * 4);
}

void Ring::copyTimestamps(uint64_t offset, uint64_t rows, double* dst) const {
  const uint64_t slot = (oldestSequence() + offset) & mask_;
  const uint64_t firstPart = rows < capacity_ - slot ? rows : capacity_ - slot;
  std::memcpy(dst, timestamps_ + slot, firstPart * 8);
  if (rows > firstPart) std::memcpy(dst + firstPart, timestamps_, (rows - firstPart) * 8);
}

void Ring::copyLatest(uint64_t n, double* timestamps, float* values) const {
  const uint64_t k = latestCount(n);
  const uint64_t offset = size() - k;
  if (k == 0) return;
  copyTimestamps(offset, k, timestamps);
  copyRows(offset, k, values);
}

uint64_t Ring::rangeCount(double fromMs, double toMs) const {
  const uint64_t first = oldestSequence(), w = *writeSeq_;
  uint64_t n = 0;
  for (uint64_t s = first; s < w; s++) {
    double t = timestamps_[s & mask_];
    n += (t >= fromMs && t <= toMs);
  }
  return n;
}

void Ring::copyRange(double fromMs, double toMs, double* timestamps, float* values) const {
  const uint64_t first = oldestSequence(), w = *writeSeq_;
  uint64_t i = 0;
  for (uint64_t s = first; s < w; s++) {
    const uint64_t slot = s & mask_;
    double t = timestamps_[slot];
    if (!(t >= fromMs && t <= toMs)) continue;
    timestamps[i] = t;
    std::memcpy(values + i * channels_, values_ + slot * channels_, size_t(channels_) * 4);
    i++;
  }
}

ChannelStats Ring::stats() const {
  catchUpStats();
  std::vector<Moments> total(channels_);
  const uint64_t blocks = capacity_ >> blockShift_;
  for (uint64_t k = 0; k < blocks; k++) {
    for (uint32_t c = 0; c < channels_; c++) {
      const Block& b = blocks_[k * channels_ + c];
      if (b.count == 0) continue;
      const double n = b.count, m2 = b.s2 - b.s1 * b.s1 / n;
      total[c].merge(n, double(b.x0) + b.s1 / n, m2 > 0 ? m2 : 0, b.min, b.max);
    }
  }
  // The older slots of a block that is part-way through being overwritten.
  const uint64_t w = *writeSeq_;
  const uint64_t next = w & mask_;
  const uint64_t blockEnd = ((next >> blockShift_) + 1) << blockShift_;
  const uint64_t first = oldestSequence();
  if ((next & ((1ull << blockShift_) - 1)) != 0) {
    for (uint64_t slot = next; slot < blockEnd; slot++) {
      const uint64_t k = slot - next;  // this slot holds sequence w + k − capacity, if any
      if (w + k < capacity_ || w + k - capacity_ < first) continue;
      const float* row = values_ + slot * channels_;
      for (uint32_t c = 0; c < channels_; c++)
        if (row[c] == row[c]) total[c].merge(1, row[c], 0, row[c], row[c]);
    }
  }
  ChannelStats out;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const Moments& m : total) {
    out.count.push_back(m.count);
    out.mean.push_back(m.count ? m.mean : nan);
    out.std.push_back(m.count ? std::sqrt(m.m2 / m.count) : nan);
    out.min.push_back(m.count ? double(m.min) : nan);
    out.max.push_back(m.count ? double(m.max) : nan);
  }
  return out;
}

WindowPlan Ring::planWindows(uint32_t lookback, uint32_t horizon, uint32_t stride) const {
  if (lookback == 0 || horizon == 0 || stride == 0)
    throw RingError(RingErrorKind::Argument, "lookback, horizon and stride must be positive");
  WindowPlan plan;
  const uint64_t n = size();
  const uint64_t span = uint64_t(lookback) + horizon;
  if (n < span) return plan;
  // One pass marks rows holding a missing value (prefix counts); each window is then an O(1) test.
  std::vector<uint32_t> bad(n + 1, 0);
  const uint64_t first = oldestSequence();
  for (uint64_t i = 0; i < n; i++) {
    const float* row = values_ + ((first + i) & mask_) * channels_;
    bad[i + 1] = bad[i] + (rowFinite(row, channels_) ? 0 : 1);
  }
  const uint64_t candidates = (n - span) / stride + 1;
  plan.starts.reserve(candidates);
  for (uint64_t k = 0; k < candidates; k++) {
    const uint64_t s = k * stride;
    if (bad[s + span] == bad[s]) plan.starts.push_back(s);
    else plan.skipped++;
  }
  return plan;
}

void Ring::fillWindows(const WindowPlan& plan, uint32_t lookback, uint32_t horizon, float* x, float* y) const {
  const size_t xw = size_t(lookback) * channels_, yw = size_t(horizon) * channels_;
  for (size_t i = 0; i < plan.starts.size(); i++) {
    copyRows(plan.starts[i], lookback, x + i * xw);
    copyRows(plan.starts[i] + lookback, horizon, y + i * yw);
  }
}

}  // namespace icosfl
