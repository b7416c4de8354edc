// Numbers from Linux's /proc files: the process's resident memory (/proc/self/status VmRSS,
// VmHWM), the machine's available memory (/proc/meminfo MemAvailable). Internal.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace nnterp {

// The first number after "<key>:" on its line of `file` ("Threads", "VmRSS"), or -1 when absent.
inline int64_t proc_field(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) {
      std::istringstream fields(line.substr(key.size() + 1));
      int64_t value = -1;
      fields >> value;
      return value;
    }
  return -1;
}

// A field given in kB, in bytes ("VmRSS", "VmHWM", "MemAvailable"); -1 when absent.
inline int64_t proc_bytes(const char* file, const std::string& key) {
  const int64_t kb = proc_field(file, key);
  return kb < 0 ? -1 : kb * 1024;
}

}  // namespace nnterp
