// JSONL reading for the library's own readers (prompt files, run-prompts records).
#pragma once

#include <istream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nnterp::io {

// Every non-empty line parsed; errors name `where` and the line number.
std::vector<nlohmann::json> read_jsonl(std::istream& in, const std::string& where);
std::vector<nlohmann::json> read_jsonl(const std::string& path);

}  // namespace nnterp::io
