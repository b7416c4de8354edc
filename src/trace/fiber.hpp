// A function run on its own stack, on the calling thread, that can pause itself and be resumed.
//
// The trace runs the model's forward pass in a Fiber so that the body and the forward take turns
// without a second OS thread: a switch is a register swap (well under a microsecond), where a
// hand-off between threads costs a wake-up, a migration and cold caches (about 1 ms per point on a
// busy 2-core machine, which made tracing every layer 5% slower than a plain forward).
#pragma once

#include <cstddef>
#include <functional>

#include <ucontext.h>

namespace nnterp::trace_detail {

class Fiber {
 public:
  // `entry` must not let an exception escape (there is no caller frame on the fiber's stack).
  explicit Fiber(std::function<void()> entry);
  ~Fiber();  // the fiber must have finished (or never started)
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // Caller side: runs the fiber until it suspends or finishes.
  void resume();
  // Fiber side: returns control to the caller of resume().
  void suspend();

  bool started() const { return started_; }
  bool finished() const { return finished_; }

 private:
  static void trampoline(unsigned int high, unsigned int low);
  void run();

  std::function<void()> entry_;
  void* stack_ = nullptr;  // from the calling thread's pool (see fiber.cpp)
  size_t stack_size_ = 0;
  ucontext_t caller_{}, self_{};
  // Where the caller's stack lies, for AddressSanitizer's fiber-switch annotations.
  const void* caller_stack_bottom_ = nullptr;
  size_t caller_stack_size_ = 0;
  bool started_ = false, finished_ = false;
};

}  // namespace nnterp::trace_detail
