#include "sd-notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace icosfl {

NotifyResult sdNotify(const std::string& state) {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (env == nullptr || env[0] == '\0') return NotifyResult::Unset;
  const std::string addr(env);
  if (addr[0] != '/' && addr[0] != '@')
    throw std::invalid_argument("NOTIFY_SOCKET must be an absolute path or start with '@', got \"" + addr + "\"");

  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (addr.size() >= sizeof sa.sun_path)
    throw std::invalid_argument("NOTIFY_SOCKET is longer than " + std::to_string(sizeof sa.sun_path - 1) + " bytes");
  std::memcpy(sa.sun_path, addr.data(), addr.size());
  // Abstract namespace: a leading NUL instead of '@', and the length counts exactly the name
  // (no trailing NUL), as systemd binds it.
  if (addr[0] == '@') sa.sun_path[0] = '\0';
  const socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + addr.size() + (addr[0] == '/' ? 1 : 0));

  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "sd_notify: socket");
  const ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), len);
  const int err = errno;
  close(fd);
  if (sent < 0) throw std::system_error(err, std::generic_category(), "sd_notify: sendto " + addr);
  return NotifyResult::Sent;
}

}  // namespace icosfl
