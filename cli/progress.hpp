// Progress bars for the CLI commands that run many prompts (or many patches): drawn on stderr only,
// only when stderr is a terminal (NNTERP_PROGRESS=always draws them anyway, =never never), never
// with --quiet. A command that shows one splits its work into chunks of --batch-size prompts and
// calls the library once per chunk: every method batches its prompts the same way internally, so
// the results are the same, bit for bit, as one call (tests/methods/cli_progress_plots_test.cpp).
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <string>

namespace nnterp::cli {

// --quiet / -q: no progress bar.
void add_quiet_option(CLI::App& cmd, bool& quiet);

// Whether a bar is drawn: not `quiet`, and $NNTERP_PROGRESS is "always" (or "1"), or it is unset /
// "auto" and stderr is a terminal; "never" (or "0") turns every bar off.
bool progress_wanted(bool quiet);

// "\r[#########.....................] 3/10 prompts  2.1 prompts/s  elapsed 1s  ETA 3s" on stderr,
// redrawn in place (at most 10 times a second, and at the end); a newline when done. Nothing is
// drawn during the first second (work that ends sooner shows no bar), except with
// NNTERP_PROGRESS=always, which draws from the start.
class Progress {
 public:
  Progress(int64_t total, std::string unit, bool enabled);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void update(int64_t done);
  void finish();

 private:
  int64_t total_;
  std::string unit_;
  bool enabled_, immediate_, drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_{};
};

// Calls fn(begin, end) over [0, n): once with (0, n) when no bar is wanted, else chunk by chunk
// (`chunk` items each) with a bar counting `unit`s.
void for_each_chunk(int64_t n, int64_t chunk, bool progress, const std::string& unit,
                    const std::function<void(int64_t begin, int64_t end)>& fn);

// --width / --height: the pixel size of the --html plots (0, the default: sized to their content).
void add_plot_size_options(CLI::App& cmd, int& width, int& height);

}  // namespace nnterp::cli
