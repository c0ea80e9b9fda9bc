// Test harness only (LD_PRELOAD): every IPv4 connection the process opens
// leaves from $IMAGEFS_TEST_SOURCE_ADDR (a 127.0.0.0/8 address), so that
// `tc` can shape one daemon's traffic on loopback as its own WAN link
// (tests/mount/central_unreachable.sh). Nothing else changes: librados
// connects as always, only its sockets are bound first.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>

extern "C" int connect(int fd, const struct sockaddr* address, socklen_t length) {
  using Connect = int (*)(int, const struct sockaddr*, socklen_t);
  static Connect real = reinterpret_cast<Connect>(dlsym(RTLD_NEXT, "connect"));
  const char* source = std::getenv("IMAGEFS_TEST_SOURCE_ADDR");
  if (source && address && address->sa_family == AF_INET) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (inet_pton(AF_INET, source, &local.sin_addr) == 1) {
      // Fails harmlessly for a socket bound already.
      (void)bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof(local));
    }
  }
  return real(fd, address, length);
}
