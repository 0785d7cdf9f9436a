// sd_notify(3) without libsystemd: one AF_UNIX datagram to $NOTIFY_SOCKET. Pure POSIX, no Node.
#pragma once

#include <string>

namespace icosfl {

enum class NotifyResult { Sent, Unset };

// Sends `state` (e.g. "READY=1", "WATCHDOG=1") to the socket named by $NOTIFY_SOCKET: an
// absolute path, or '@name' for an abstract socket. Returns Unset when the variable is unset or
// empty. Throws std::system_error when sending fails and std::invalid_argument for an address
// it cannot use (relative, too long, or a vsock: address, which systemd ≥ 254 may pass).
NotifyResult sdNotify(const std::string& state);

}  // namespace icosfl
