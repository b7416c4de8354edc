#include "trace/fiber.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define NNTERP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NNTERP_ASAN 1
#endif
#endif

#ifdef NNTERP_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

namespace nnterp::trace_detail {

namespace {

// AddressSanitizer tracks which stack it is on; tell it about every switch (no-ops otherwise).
void start_switch(void** fake_stack, const void* bottom, size_t size) {
#ifdef NNTERP_ASAN
  __sanitizer_start_switch_fiber(fake_stack, bottom, size);
#else
  (void)fake_stack, (void)bottom, (void)size;
#endif
}

void finish_switch(void* fake_stack, const void** bottom, size_t* size) {
#ifdef NNTERP_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, bottom, size);
#else
  (void)fake_stack, (void)bottom, (void)size;
#endif
}

// 16 MiB of address space per stack, with an inaccessible guard page below it so an overflow
// faults instead of overwriting memory. Pages are only backed once touched (a forward pass uses
// a few dozen KiB), and stacks are reused per thread, so a trace costs no mmap after the first.
constexpr size_t kStackSize = size_t{16} << 20;

size_t page_size() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

// Unmaps a stack from take() together with its guard page.
void unmap_stack(void* stack) { munmap(static_cast<char*>(stack) - page_size(), kStackSize + page_size()); }

struct StackPool {
  std::vector<void*> free;
  ~StackPool() {
    for (void* s : free) unmap_stack(s);
  }
  void* take() {
    if (!free.empty()) {
      void* s = free.back();
      free.pop_back();
      return s;
    }
    void* region = mmap(nullptr, kStackSize + page_size(), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (region == MAP_FAILED) throw std::runtime_error("nnterp: cannot map a 16 MiB stack for the trace's forward pass");
    mprotect(region, page_size(), PROT_NONE);
    return static_cast<char*>(region) + page_size();
  }
  void give_back(void* s) {
    // Keep a few for nested traces; more than that were a burst.
    if (free.size() < 4) {
      free.push_back(s);
    } else {
      unmap_stack(s);
    }
  }
};

StackPool& pool() {
  thread_local StackPool p;
  return p;
}

}  // namespace

Fiber::Fiber(std::function<void()> entry) : entry_(std::move(entry)) {}

Fiber::~Fiber() {
  if (started_ && !finished_) {
    // Destroying a suspended fiber would leak everything alive on its stack; the trace engine
    // always unwinds it first, so this is a bug, not a user error.
    std::cerr << "nnterp: internal error: a trace's forward pass was destroyed while suspended\n";
    std::abort();
  }
  if (stack_) pool().give_back(stack_);
}

void Fiber::trampoline(unsigned int high, unsigned int low) {
  auto* self = reinterpret_cast<Fiber*>((static_cast<uintptr_t>(high) << 32) | static_cast<uintptr_t>(low));
  self->run();
}

void Fiber::run() {
  finish_switch(nullptr, &caller_stack_bottom_, &caller_stack_size_);
  entry_();
  finished_ = true;
  // The fiber's stack is done for good: a null fake stack lets AddressSanitizer free its records.
  start_switch(nullptr, caller_stack_bottom_, caller_stack_size_);
  swapcontext(&self_, &caller_);  // never returns: nobody resumes a finished fiber
}

void Fiber::resume() {
  if (finished_) return;
  if (!started_) {
    stack_ = pool().take();
    stack_size_ = kStackSize;
    getcontext(&self_);
    self_.uc_stack.ss_sp = stack_;
    self_.uc_stack.ss_size = stack_size_;
    self_.uc_link = nullptr;
    const auto address = reinterpret_cast<uintptr_t>(this);
    makecontext(&self_, reinterpret_cast<void (*)()>(&Fiber::trampoline), 2, static_cast<unsigned int>(address >> 32),
                static_cast<unsigned int>(address & 0xffffffffu));
    started_ = true;
  }
  void* fake_stack = nullptr;
  start_switch(&fake_stack, stack_, stack_size_);
  swapcontext(&caller_, &self_);
  finish_switch(fake_stack, nullptr, nullptr);
}

void Fiber::suspend() {
  void* fake_stack = nullptr;
  start_switch(&fake_stack, caller_stack_bottom_, caller_stack_size_);
  swapcontext(&self_, &caller_);
  finish_switch(fake_stack, &caller_stack_bottom_, &caller_stack_size_);
}

}  // namespace nnterp::trace_detail
