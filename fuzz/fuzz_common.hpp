// Shared by the libFuzzer targets (see docs/fuzzing.md).
//
// The contract every target checks: on any input, the library either succeeds or throws
// nnterp::Error (an accepted outcome). Any other exception escapes the target, so libFuzzer
// reports it as a crash (uncaught exception -> std::terminate -> abort), as it does for
// sanitizer reports, leaks, timeouts and out-of-memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "nnterp/error.hpp"

namespace nnterp::fuzz {

// Runs `body`; an nnterp::Error with a non-empty message is fine, everything else propagates.
template <typename F>
bool accepts(F&& body) {
  try {
    body();
    return true;
  } catch (const nnterp::Error& e) {
    // Errors must say what went wrong and where.
    if (e.message().empty() || e.subject().empty()) {
      std::fprintf(stderr, "nnterp::Error without a subject or message: %s\n", e.what());
      std::abort();
    }
    if (std::getenv("NNTERP_FUZZ_VERBOSE")) std::fprintf(stderr, "nnterp::Error: %s\n", e.what());
    return false;
  }
}

// A property the library must hold: aborts (a libFuzzer crash) with `what` when false.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz property violated: %s\n", what);
    std::abort();
  }
}

// Consumes inputs byte by byte from the front.
struct Bytes {
  const uint8_t* p;
  size_t n;
  uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  std::string_view rest() const { return {reinterpret_cast<const char*>(p), n}; }
};

}  // namespace nnterp::fuzz
