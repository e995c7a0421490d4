#include "shared_memory_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

namespace mlscale::worker {

namespace {

std::string ErrnoText(int error) { return std::strerror(error); }

StatusOr<void*> MapPopulated(int fd, const std::string& name, size_t bytes) {
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (base == MAP_FAILED) return Unavailable("mmap " + name + ": " + ErrnoText(errno));
  return base;
}

}  // namespace

uint64_t RandomWord() {
  std::random_device device;
  return (uint64_t(device()) << 32) ^ uint64_t(device());
}

StatusOr<MappedSegment> CreateSharedSegment(size_t bytes) {
  char text[40];
  std::snprintf(text, sizeof text, "/mlscale-%016llx", static_cast<unsigned long long>(RandomWord()));
  const std::string name = text;
  int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return Unavailable("shm_open " + name + ": " + ErrnoText(errno));
  if (int rc = ::posix_fallocate(fd, 0, off_t(bytes)); rc != 0) {
    ::close(fd);
    ::shm_unlink(name.c_str());
    return Unavailable("cannot reserve " + std::to_string(bytes >> 20) + " MiB in /dev/shm: " + ErrnoText(rc));
  }
  auto base = MapPopulated(fd, name, bytes);
  ::close(fd);
  if (!base.ok()) {
    ::shm_unlink(name.c_str());
    return base.status();
  }
  return MappedSegment{name, *base, bytes};
}

StatusOr<MappedSegment> OpenSharedSegment(const std::string& name, size_t bytes) {
  if (name.size() < 2 || name.size() > 64 || name[0] != '/' || name.find('/', 1) != std::string::npos) {
    return InvalidArgument("'" + name + "' is not a shared-memory segment name");
  }
  int fd = ::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return Unavailable("shm_open " + name + ": " + ErrnoText(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || size_t(st.st_size) != bytes) {
    ::close(fd);
    return FailedPrecondition(name + " is not " + std::to_string(bytes) + " bytes");
  }
  auto base = MapPopulated(fd, name, bytes);
  ::close(fd);
  if (!base.ok()) return base.status();
  return MappedSegment{name, *base, bytes};
}

}  // namespace mlscale::worker
