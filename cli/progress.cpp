#include "progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "common.hpp"

namespace nnterp::cli {

void add_quiet_option(CLI::App& cmd, bool& quiet) {
  cmd.add_flag("-q,--quiet", quiet, "no progress bar on stderr (it is only drawn when stderr is a terminal, or with NNTERP_PROGRESS=always)");
}

namespace {
std::string progress_mode() {
  const char* env = std::getenv("NNTERP_PROGRESS");
  return env ? env : "";
}
bool progress_forced() { return progress_mode() == "always" || progress_mode() == "1"; }
}  // namespace

bool progress_wanted(bool quiet) {
  if (quiet) return false;
  if (progress_forced()) return true;
  if (progress_mode() == "never" || progress_mode() == "0") return false;
  return ::isatty(2) != 0;
}

namespace {
std::string duration_text(double s) {
  const long long t = static_cast<long long>(s + 0.5);
  if (t < 60) return fmt::format("{}s", t);
  if (t < 3600) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}h{:02}m", t / 3600, (t % 3600) / 60);
}
}  // namespace

Progress::Progress(int64_t total, std::string unit, bool enabled)
    : total_(total), unit_(std::move(unit)), enabled_(enabled && total > 0), immediate_(progress_forced()),
      start_(std::chrono::steady_clock::now()) {
  update(0);
}

Progress::~Progress() { finish(); }

void Progress::update(int64_t done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!drawn_ && !immediate_ && now - start_ < std::chrono::seconds(1)) return;  // work under a second shows none
  if (drawn_ && done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
  constexpr int64_t kWidth = 30;
  std::string bar(static_cast<size_t>(kWidth * std::min(done, total_) / total_), '#');
  bar.resize(kWidth, '.');
  const std::string eta = rate > 0 ? duration_text(static_cast<double>(total_ - done) / rate) : "?";
  fmt::print(stderr, "\r[{}] {}/{} {}  {:.1f} {}/s  elapsed {}  ETA {}   ", bar, done, total_, unit_, rate, unit_,
             duration_text(secs), eta);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (drawn_) fmt::print(stderr, "\n");
  drawn_ = false;
}

void for_each_chunk(int64_t n, int64_t chunk, bool progress, const std::string& unit,
                    const std::function<void(int64_t, int64_t)>& fn) {
  if (!progress || n <= 0) {
    fn(0, n);
    return;
  }
  chunk = std::max<int64_t>(1, chunk);
  Progress bar(n, unit, true);
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t e = std::min(n, b + chunk);
    fn(b, e);
    bar.update(e);
  }
}

void add_plot_size_options(CLI::App& cmd, int& width, int& height) {
  positive_integer(cmd.add_option("--width", width, "width of the --html plot in pixels (default: sized to its content)"));
  positive_integer(cmd.add_option("--height", height, "height of the --html plot in pixels (default: sized to its content)"));
}

}  // namespace nnterp::cli
